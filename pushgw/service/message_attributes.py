"""Message-attribute validation with SNS's exact texts (SNS_API §6.4)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pushgw import safejson
from pushgw.errors import ParameterValueInvalidError, ValidationError
from pushgw.model import MessageAttribute
from pushgw.service.types import MessageAttributeInput
from pushgw.sns.mobile import MOBILE_PREFIX, RESERVED_MOBILE

NAME_CHAR = re.compile(r"[A-Za-z0-9_.\-]")
TYPE_PREFIXES = ("String", "Number", "Binary")
# Allowed values of the reserved attributes that have a closed set [AWS sample].
RESERVED_VALUES: Mapping[str, frozenset[str]] = {
    MOBILE_PREFIX + "APNS.PRIORITY": frozenset({"1", "5", "10"}),
    MOBILE_PREFIX + "APNS.PUSH_TYPE": frozenset(
        {
            "alert",
            "background",
            "voip",
            "complication",
            "fileprovider",
            "mdm",
            "location",
            "liveactivity",
            "pushtotalk",
            "controls",
            "widgets",
        }
    ),
    MOBILE_PREFIX + "MPNS.Type": frozenset({"token", "toast", "raw"}),
    MOBILE_PREFIX + "MPNS.NotificationClass": frozenset(
        {"realtime", "priority", "regular"}
    ),
    MOBILE_PREFIX + "WNS.Type": frozenset(
        {"wns/badge", "wns/tile", "wns/toast", "wns/raw"}
    ),
    MOBILE_PREFIX + "WNS.CachePolicy": frozenset({"cache", "no-cache"}),
    MOBILE_PREFIX + "BAIDU.DeployStatus": frozenset({"1", "2"}),
    MOBILE_PREFIX + "BAIDU.MessageType": frozenset({"0", "1"}),
}


def bad(text: str) -> ParameterValueInvalidError:
    return ParameterValueInvalidError(text)


def validate_attributes(
    attributes: Mapping[str, MessageAttributeInput],
) -> dict[str, MessageAttribute]:
    """Check every attribute; return them as model values."""
    out: dict[str, MessageAttribute] = {}
    for name, value in attributes.items():
        _check_name(name)
        out[name] = _check_value(name, value)
        if name.startswith(("AWS.", "Amazon.")):
            _check_reserved(name, out[name])
    return out


def _check_name(name: str) -> None:
    if len(name.encode()) >= 256:
        raise bad("Length of message attribute name must be less than 256 bytes.")
    if name == "":
        raise bad("The message attribute name must not be empty.")
    for char in name:
        if not NAME_CHAR.match(char):
            raise bad(
                f"Invalid non-alphanumeric character '#x{ord(char):X}' was found in the"
                " message attribute name. Can only include alphanumeric characters,"
                " hyphens, underscores, or dots."
            )
    if name.startswith("."):
        raise bad(
            "Invalid message attribute name starting with character '.' was found."
        )
    if name.endswith("."):
        raise bad("Invalid message attribute name ending with character '.' was found.")
    if ".." in name:
        raise bad("Message attribute name can not have successive '.' character.")


def _check_value(name: str, value: MessageAttributeInput) -> MessageAttribute:
    data_type = value.data_type
    if data_type is None:
        raise ValidationError(
            f"1 validation error detected: Value null at 'messageAttributes.{name}"
            ".member.dataType' failed to satisfy constraint: Member must not be null"
        )
    prefix = data_type.split(".", 1)[0]
    if prefix not in TYPE_PREFIXES:
        raise bad(
            f"The message attribute '{name}' has an invalid message attribute type,"
            " the set of supported type prefixes is Binary, Number, and String."
        )
    if prefix == "Binary":
        if value.binary_value is None and value.string_value is not None:
            raise bad(
                f"The message attribute '{name}' with type '{data_type}' must use"
                " field 'Binary'."
            )
        if not value.binary_value:
            raise _empty(name, data_type)
        return MessageAttribute(data_type, binary_value=value.binary_value)
    if value.string_value is None and value.binary_value is not None:
        raise bad(
            f"The message attribute '{name}' with type '{data_type}' must use field"
            " 'String'."
        )
    if not value.string_value:
        raise _empty(name, data_type)
    if prefix == "Number":
        try:
            float(value.string_value)
        except ValueError:
            raise bad(
                f"Could not cast message attribute '{name}' value to number."
            ) from None
    if data_type.startswith("String.Array"):
        try:
            ok = isinstance(safejson.loads(value.string_value), list)
        except safejson.JsonInputError:  # malformed or too deep: same SNS text
            ok = False
        if not ok:
            raise bad(
                f"The message attribute '{name}' with type 'String.Array' must be a"
                " JSON array."
            )
    return MessageAttribute(data_type, string_value=value.string_value)


def _empty(name: str, data_type: str) -> ParameterValueInvalidError:
    return bad(
        f"The message attribute '{name}' must contain non-empty message attribute"
        f" value for message attribute type '{data_type}'."
    )


def _check_reserved(name: str, value: MessageAttribute) -> None:
    if name not in RESERVED_MOBILE:
        raise bad(
            f"The message attribute name '{name}' is reserved: names starting with"
            " 'AWS.' or 'Amazon.' are for Amazon SNS."
        )
    text = value.string_value or ""
    allowed = RESERVED_VALUES.get(name)
    if allowed is not None and text not in allowed:
        raise bad(
            f"The message attribute '{name}' has an invalid value '{text}'; allowed:"
            f" {', '.join(sorted(allowed))}."
        )
    if name.endswith(".TTL") and not (text.isdigit() and int(text) <= 2_419_200 * 10):
        raise bad(
            f"The message attribute '{name}' must be a non-negative whole number of"
            " seconds."
        )
