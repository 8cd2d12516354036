"""The approval settings of a PDF Emailer as ops type them: ``approval=on approval_timeout=24h on_timeout=skip``.

Pure parsing and arithmetic (no I/O). A timeout is a whole number of minutes, hours
or days (``30m``, ``24h``, ``2d``) between ``MIN_TIMEOUT`` and ``MAX_TIMEOUT``: under
five minutes nobody can react, and past two weeks a prepared invoice is too stale to
issue. The reminder comes once, at ``REMINDER_FRACTION`` of the timeout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from invoicing.errors import InvalidInput
from invoicing.validation import parse_switch
from models import Integration, OnTimeout

MIN_TIMEOUT = timedelta(minutes=5)
MAX_TIMEOUT = timedelta(days=14)
REMINDER_FRACTION = 0.75
_UNITS = {"m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d{1,6})\s*([mhd])")


@dataclass(frozen=True)
class ApprovalPolicy:
    """Whether scheduled runs wait for approval, for how long, and what happens then."""

    enabled: bool
    timeout: timedelta
    on_timeout: OnTimeout

    def expires_at(self, prepared_at: datetime) -> datetime:
        return prepared_at + self.timeout

    def remind_at(self, prepared_at: datetime) -> datetime:
        """``REMINDER_FRACTION`` of the way to the timeout (18 h into a 24-h timeout)."""
        return prepared_at + self.timeout * REMINDER_FRACTION


def policy_of(row: Integration) -> ApprovalPolicy:
    """The policy stored on an integration row."""
    return ApprovalPolicy(enabled=row.approval, timeout=timedelta(seconds=row.approval_timeout),
                          on_timeout=OnTimeout(row.approval_on_timeout))


def parse_timeout(text: str) -> timedelta:
    """``30m`` / ``24h`` / ``2d`` → a duration within the bounds, else ``InvalidInput('approval_timeout')``."""
    match = _DURATION.fullmatch(str(text).strip().lower())
    if match is None:
        raise InvalidInput("approval_timeout", f"{text!r} is not a duration; use minutes, hours or days such as "
                                               "30m, 24h or 2d")
    duration = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if not MIN_TIMEOUT <= duration <= MAX_TIMEOUT:
        raise InvalidInput("approval_timeout", f"{text!r} is out of range; give between "
                                               f"{format_duration(MIN_TIMEOUT)} and {format_duration(MAX_TIMEOUT)}")
    return duration


def parse_on_timeout(text: str) -> OnTimeout:
    try:
        return OnTimeout(str(text).strip().lower())
    except ValueError:
        raise InvalidInput("on_timeout", f"{text!r} is not a policy; use issue or skip") from None


def format_duration(duration: timedelta) -> str:
    """The shortest exact form ops would type (``90m``, ``24h``, ``2d``)."""
    seconds = int(duration.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


#: The integration columns that hold the policy (saved and audited with the other settings).
COLUMNS = ("approval", "approval_timeout", "approval_on_timeout")


def parse_changes(approval: bool | str | None, timeout: str | None, on_timeout: str | None) -> dict[str, object]:
    """The given options as column values (``None`` = not given); raises ``InvalidInput`` naming a bad one."""
    columns: dict[str, object] = {}
    if approval is not None:
        columns["approval"] = parse_switch(approval, "approval")
    if timeout is not None:
        columns["approval_timeout"] = int(parse_timeout(timeout).total_seconds())
    if on_timeout is not None:
        columns["approval_on_timeout"] = parse_on_timeout(on_timeout).value
    return columns


def snapshot(row: Integration) -> dict[str, str]:
    """The audited form of the policy (``approval``, ``approval_timeout``, ``on_timeout``)."""
    policy = policy_of(row)
    return {"approval": "on" if policy.enabled else "off", "approval_timeout": format_duration(policy.timeout),
            "on_timeout": policy.on_timeout.value}
