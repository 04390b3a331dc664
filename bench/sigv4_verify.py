"""
CPU per SigV4 verification (`pushgw.api.sigv4.verify_sigv4`), trees side by side.

    python bench/sigv4_verify.py [--n 20000] [--rounds 7] --variant NAME=TREE ...

The request is a Publish as boto3 signs it (botocore's SigV4Auth: header form,
`content-type;host;x-amz-date` signed). Each run is a fresh child with
PYTHONPATH=TREE that verifies it `--n` times after a warm-up; runs interleave
(the order rotates every round) and the figure is the median over rounds of
`time.process_time` per verification.
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
BODY = (
    b"Action=Publish&Version=2010-03-31&TargetArn=arn%3Aaws%3Asns%3Aus-east-1%3A"
    b"123456789012%3Aendpoint%2FAPNS%2Fbench%2F0f8e5b1c-2f41-4a8e-9b3c-1d2e3f4a5b6c"
    b"&Message=hello+from+pushgw+bench"
)


def _signed() -> dict[str, Any]:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8080/",
        data=BODY,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(Credentials(KEY_ID, SECRET), "sns", "us-east-1").add_auth(request)
    prepared = request.prepare()
    headers = {
        k: v.decode() if isinstance(v, bytes) else v
        for k, v in prepared.headers.items()
    }
    headers["Host"] = "127.0.0.1:8080"
    headers["User-Agent"] = "Boto3/1.34 md/Botocore#1.34 ua/2.0 os/linux"
    headers["Content-Length"] = str(len(BODY))
    signed_at = calendar.timegm(time.strptime(headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ"))
    return {"headers": headers, "now": float(signed_at)}


def child(n: int) -> None:
    from pushgw.api.sigv4 import verify_sigv4
    from pushgw.config import AccessKey

    signed = _signed()
    keys = {KEY_ID: AccessKey(access_key_id=KEY_ID, secret_access_key=SECRET)}

    def verify() -> None:
        verify_sigv4(
            method="POST",
            path="/",
            query=[],
            headers=signed["headers"],
            body=BODY,
            keys=keys,
            region="us-east-1",
            now=signed["now"] + 1.0,
        )

    for _ in range(min(n, 1000)):
        verify()
    cpu0 = time.process_time()
    for _ in range(n):
        verify()
    cpu = time.process_time() - cpu0
    print(json.dumps({"us": cpu / n * 1e6}))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--variant", action="append", default=[])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.n)
        return 0
    variants = [
        (name, Path(tree).resolve())
        for name, _, tree in (v.partition("=") for v in args.variant or ["this=."])
    ]
    here = Path(__file__).resolve()
    figures: dict[str, list[float]] = {name: [] for name, _ in variants}
    for rnd in range(args.rounds):
        shift = rnd % len(variants)
        for name, tree in variants[shift:] + variants[:shift]:
            done = subprocess.run(
                [sys.executable, str(here), "--child", "--n", str(args.n)],
                cwd=tree,
                env={**os.environ, "PYTHONPATH": str(tree)},
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            us = json.loads(done.stdout.strip().splitlines()[-1])["us"]
            figures[name].append(us)
            print(f"  round {rnd + 1} {name:<10} {us:7.1f} µs CPU/verification")
    print(f"\n{'variant':<10} {'median µs':>10} {'min':>7} {'max':>7}")
    for name, values in figures.items():
        print(
            f"{name:<10} {statistics.median(values):10.1f}"
            f" {min(values):7.1f} {max(values):7.1f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
