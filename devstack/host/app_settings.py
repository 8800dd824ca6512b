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
