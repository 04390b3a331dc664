"""
Syntactic validation of platform credentials (SNS_API §4.1, [SPEC]).

AWS contacts the provider; pushgw checks what can be checked offline: PEMs parse,
the key matches the certificate, the certificate is within its dates, the
service-account JSON has its fields, key and team ids have Apple's shape. It
returns derived read-only attributes (AuthenticationMethod, certificate expiry).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pushgw import safejson
from pushgw.errors import InvalidParameterError
from pushgw.model import Platform

APPLE_ID = re.compile(r"^[A-Z0-9]{10}$")
BUNDLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$")
PEM_CERT = "-----BEGIN CERTIFICATE-----"
SERVICE_ACCOUNT_FIELDS = ("private_key", "client_email", "project_id")


def invalid(reason: str) -> InvalidParameterError:
    return InvalidParameterError(f"Invalid parameter: Attributes Reason: {reason}")


def validate(
    platform: Platform,
    *,
    principal: str,
    credential: str,
    attributes: Mapping[str, str],
    now: float,
) -> dict[str, str]:
    """Check one platform's credentials; return derived read-only attributes."""
    if platform.is_apple:
        if principal.lstrip().startswith(PEM_CERT):
            return _certificate(principal, credential, now=now, what="APNs")
        return _apple_token(principal, credential, attributes)
    if platform is Platform.GCM:
        return _gcm(credential)
    if platform is Platform.MPNS and principal.lstrip().startswith(PEM_CERT):
        return _certificate(principal, credential, now=now, what="MPNS")
    if not principal.strip() or not credential.strip():
        raise invalid("Platform credentials are invalid")
    return {}


def is_service_account(credential: str) -> bool:
    return credential.lstrip().startswith("{")


def expires_at(platform: Platform, principal: str) -> float | None:
    """
    When an app's credentials stop working, in epoch seconds, where the
    credentials say so: the not-after date of an APNs (or MPNS) client
    certificate. None for everything else: APNs .p8 keys do not expire, and a
    service-account JSON (FCM) carries no expiry (Google keeps it, if any, in
    IAM); nor for a certificate that does not parse (validate refused those).
    """
    if not (platform.is_apple or platform is Platform.MPNS):
        return None
    if not principal.lstrip().startswith(PEM_CERT):
        return None
    try:
        cert = x509.load_pem_x509_certificate(principal.encode())
    except ValueError:
        return None
    return cert.not_valid_after_utc.timestamp()


def _certificate(
    principal: str, credential: str, *, now: float, what: str
) -> dict[str, str]:
    try:
        cert = x509.load_pem_x509_certificate(principal.encode())
    except ValueError as exc:
        raise invalid(f"{what} certificate is not a valid PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(credential.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise invalid(f"{what} private key is not a valid PEM private key") from exc
    public = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    own = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if public != own:
        raise invalid(f"{what} private key does not match the certificate")
    moment = dt.datetime.fromtimestamp(now, tz=dt.UTC)
    if cert.not_valid_after_utc < moment:
        raise invalid(f"{what} certificate has expired")
    if cert.not_valid_before_utc > moment:
        raise invalid(f"{what} certificate is not yet valid")
    expiry = cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"AuthenticationMethod": "Certificate", "AppleCertificateExpiryDate": expiry}


def _apple_token(
    principal: str, credential: str, attributes: Mapping[str, str]
) -> dict[str, str]:
    if not APPLE_ID.match(principal):
        raise invalid("PlatformPrincipal must be a 10-character APNs signing key ID")
    try:
        key = serialization.load_pem_private_key(credential.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise invalid("PlatformCredential is not a valid .p8 signing key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise invalid("PlatformCredential must be an EC P-256 (.p8) signing key")
    team = attributes.get("ApplePlatformTeamID", "")
    if not APPLE_ID.match(team):
        raise invalid("ApplePlatformTeamID must be a 10-character Apple team ID")
    bundle = attributes.get("ApplePlatformBundleID", "")
    if not BUNDLE_ID.match(bundle):
        raise invalid("ApplePlatformBundleID is required for token authentication")
    return {"AuthenticationMethod": "Token"}


def _gcm(credential: str) -> dict[str, str]:
    if not credential.strip():
        raise invalid("Platform credentials are invalid")
    if not is_service_account(credential):
        if any(c.isspace() for c in credential):
            raise invalid("Platform credentials are invalid")
        return {"AuthenticationMethod": "Key"}
    try:
        data = safejson.loads(credential)
    except safejson.JsonInputError as exc:
        raise invalid("the service account JSON failed to parse") from exc
    if not isinstance(data, dict) or data.get("type") != "service_account":
        raise invalid("the service account JSON must have type service_account")
    for name in SERVICE_ACCOUNT_FIELDS:
        if not isinstance(data.get(name), str) or not data[name]:
            raise invalid(f"the service account JSON lacks {name}")
    try:
        key = serialization.load_pem_private_key(
            data["private_key"].encode(), password=None
        )
    except (ValueError, TypeError) as exc:
        raise invalid("the service account private_key is not a valid PEM key") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise invalid("the service account private_key must be an RSA key")
    return {"AuthenticationMethod": "Token"}
