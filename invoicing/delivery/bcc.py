"""The BCC list of the PDF Emailer, as typed in the product UI: ``a@x.com, b@y.com``.

Rules (a pure function, property-tested):

* entries are separated by commas and/or spaces; ``;`` is *not* a separator (it is
  rejected as part of an invalid address, so a typo never silently drops someone);
* every entry must be a valid address (email-validator, no DNS lookup) and is
  stored normalised (domain lower-cased), by the same rule as the accounting e-mail
  (``normalise_email``): an international domain (``ops@bücher.example``) is
  accepted and sent as its ``xn--`` form where needed, a non-ASCII part before the
  ``@`` is refused because it needs SMTPUTF8 on every mail server on the way;
* duplicates are dropped case-insensitively, the first spelling and the order kept;
* any control character (CR, LF, TAB, NUL …) or Unicode line separator anywhere
  (``invoicing.validation.is_control_character``) rejects the whole value: these
  addresses end up in an SMTP envelope, and a line break there is an injection;
* at most ``MAX_BCC`` distinct addresses; the empty string means "no BCC".

Every refusal is ``InvalidInput("bcc", …)`` naming the offending entry.
"""

from __future__ import annotations

import re

from invoicing.errors import InvalidInput
from invoicing.parties.accounting import normalise_email
from invoicing.validation import has_control_characters
from models import Integration

MAX_BCC = 20

_SEPARATORS = re.compile(r"[,\s]+")


def parse_bcc(text: str) -> list[str]:
    """Parse a comma/space separated address list; raise ``InvalidInput("bcc", …)`` if any entry is bad."""
    _reject_control_characters(text)
    addresses: list[str] = []
    seen: set[str] = set()
    for entry in _SEPARATORS.split(text):
        if not entry:
            continue
        address = normalise_email(entry, field="bcc")
        key = address.casefold()
        if key in seen:
            continue
        if len(addresses) == MAX_BCC:
            raise InvalidInput("bcc", f"at most {MAX_BCC} addresses; {entry!r} is one too many")
        seen.add(key)
        addresses.append(address)
    return addresses


def _reject_control_characters(text: str) -> None:
    """Refuse line breaks and other control characters, naming the comma-separated entry holding one."""
    if not has_control_characters(text):
        return
    for position, entry in enumerate(text.split(","), start=1):
        if has_control_characters(entry):
            raise InvalidInput(
                "bcc", f"entry {position} ({entry.strip()!r}) contains a line break or control character; "
                "separate addresses with commas or spaces only"
            )


def bcc_of(integration: Integration) -> list[str]:
    """The BCC list a PDF Emailer stores in its ``settings`` (already parsed by ``parse_bcc``)."""
    return list(integration.settings.get("bcc") or [])
