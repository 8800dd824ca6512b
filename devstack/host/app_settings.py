"""Binding expressions: `%NAME%` in trigger properties is replaced by the app setting NAME."""

from __future__ import annotations

import re
from collections.abc import Mapping

from devstack.errors import SettingError

_EXPRESSION = re.compile(r"%([^%]+)%")


def resolve_setting_expression(value: str, settings: Mapping[str, str], *, where: str) -> str:
    """Replace every `%NAME%` in `value`; a missing setting is an error naming it."""

    def substitute(found: re.Match[str]) -> str:
        name = found.group(1)
        resolved = settings.get(name)
        if resolved is None:
            msg = f"{where}: app setting {name!r} (from {value!r}) is not set"
            raise SettingError(msg)
        return resolved

    return _EXPRESSION.sub(substitute, value)


def is_disabled(function_name: str, settings: Mapping[str, str]) -> bool:
    """`AzureWebJobs.<name>.Disabled` set to true: the host does not trigger the function.

    The underscore form is what Linux plans give an app setting with periods in its name.
    """
    for name in (
        f"AzureWebJobs.{function_name}.Disabled",
        f"AzureWebJobs_{function_name}_Disabled",
    ):
        if settings.get(name, "").strip().lower() in ("true", "1"):
            return True
    return False
