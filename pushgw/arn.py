"""
SNS ARNs: building them from config (region, account) and parsing client input
with SNS's own error messages (SNS_API §2, §9).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass

from pushgw.errors import InvalidParameterError
from pushgw.model import Platform

PARTITION = "aws"


def new_id() -> str:
    """A random UUID4 string for ids that need uniqueness, not secrecy.

    `uuid.uuid4()` reads os.urandom per call, a system call on the publish path.
    """
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class ArnBuilder:
    region: str
    account: str

    @property
    def prefix(self) -> str:
        return f"arn:{PARTITION}:sns:{self.region}:{self.account}:"

    @property
    def root(self) -> str:
        """The IAM principal of the gateway's account (its root user)."""
        return f"arn:{PARTITION}:iam::{self.account}:root"

    def app(self, platform: Platform, name: str) -> str:
        return f"{self.prefix}app/{platform.value}/{name}"

    def endpoint(self, platform: Platform, app_name: str) -> str:
        return f"{self.prefix}endpoint/{platform.value}/{app_name}/{new_id()}"

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def subscription(self, topic_arn: str) -> str:
        return f"{topic_arn}:{new_id()}"


@dataclass(frozen=True, slots=True)
class ParsedArn:
    region: str
    account: str
    resource: str

    @property
    def kind(self) -> str:
        return self.resource.split("/", 1)[0]


def parse(value: str, *, param: str) -> ParsedArn:
    """
    Split an SNS ARN, or raise the InvalidParameter error AWS gives.

    `param` is the request parameter name used in the message.
    """
    parts = value.split(":")
    if len(parts) < 6:
        raise InvalidParameterError(
            f"Invalid parameter: {param} Reason: An ARN must have at least 6"
            f" elements, not {len(parts)}"
        )
    if parts[0] != "arn" or parts[2] != "sns":
        raise InvalidParameterError(f"Invalid parameter: {param}")
    return ParsedArn(region=parts[3], account=parts[4], resource=":".join(parts[5:]))


def parse_app(value: str, *, param: str = "PlatformApplicationArn") -> ParsedArn:
    parsed = parse(value, param=param)
    if parsed.resource.count("/") != 2 or not parsed.resource.startswith("app/"):
        raise InvalidParameterError(
            f"Invalid parameter: {param} Reason: Wrong number of slashes in relative"
            " portion of the ARN."
        )
    return parsed


def parse_endpoint(value: str, *, param: str = "EndpointArn") -> ParsedArn:
    parsed = parse(value, param=param)
    if parsed.resource.count("/") != 3 or not parsed.resource.startswith("endpoint/"):
        raise InvalidParameterError(
            f"Invalid parameter: {param} Reason: Wrong number of slashes in relative"
            " portion of the ARN."
        )
    return parsed


def is_endpoint_arn(value: str) -> bool:
    parts = value.split(":")
    return len(parts) >= 6 and parts[5].startswith("endpoint/")
