"""
The built wheel, installed in a fresh virtual environment outside the
repository: one import namespace, and `pushgw demo`, `pushgw init` and
`pushgw check-config` work from any directory (even one holding a `pushgw/`
folder of its own).
"""

from __future__ import annotations

import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.e2e.harness import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def run(*args: str | Path, cwd: Path, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert 0 == result.returncode, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module", name="installed")
def _installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, a venv's bin directory with only that wheel installed)."""
    tmp = tmp_path_factory.mktemp("wheel")
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "-w",
        tmp,
        ROOT,
        cwd=tmp,
    )
    (wheel,) = tmp.glob("pushgw-*.whl")
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    python = venv / "bin" / "python"
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        wheel,
        cwd=tmp,
    )
    # The dependencies come from the test environment's site-packages, added
    # after the venv's own (a plain path: its .pth files, the editable install
    # of this checkout among them, are not run).
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "test-deps.pth").write_text(site.getsitepackages()[0] + "\n")
    return wheel, venv / "bin"


def test_the_wheel_installs_one_namespace(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert {"pushgw", wheel.name.split("-py3")[0] + ".dist-info"} == tops
    assert "pushgw/providers/apns.py" in names
    assert "pushgw/providers/mocks/tls.py" in names
    assert "pushgw/defaults/dev.toml" in names
    assert "pushgw/store/migrations/sqlite/0001_initial.sql" in names
    # The web console's files (package data; the daemon serves them at /console).
    console = ROOT / "pushgw" / "console"
    shipped = {
        f"pushgw/{p.relative_to(console.parent).as_posix()}"
        for p in console.rglob("*")
        if p.is_file()
    }
    assert {"pushgw/console/index.html", "pushgw/console/js/main.js"} <= shipped
    assert shipped <= set(names)


def test_demo_init_and_check_config_run_from_anywhere(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, bin_dir = installed
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "pushgw").mkdir(parents=True)  # must not shadow the package
    (elsewhere / "pushgw" / "__init__.py").write_text("raise SystemExit('wrong')\n")

    where = run(
        bin_dir / "python", "-c", "import pushgw; print(pushgw.__file__)", cwd=tmp_path
    )
    assert str(bin_dir.parent) in where, where

    demo = run(bin_dir / "pushgw", "demo", cwd=elsewhere)
    assert "Demo passed" in demo

    run(bin_dir / "pushgw", "init", "site", cwd=elsewhere)
    checked = run(bin_dir / "pushgw", "check-config", "site/pushgw.toml", cwd=elsewhere)
    assert "OK" in checked
    assert 0o600 == (elsewhere / "site" / "encryption.key").stat().st_mode & 0o777
