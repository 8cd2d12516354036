"""Export file names: ``<tenant>-<company>-<sequence>.xml``, deterministic, safe on every file system.

The same file always gets the same name (a re-upload after a crash replaces it, never adds a
second file). Names use lowercase ASCII letters, digits, ``-`` and ``_`` only: the tenant's name is
slugged (accents folded, other characters → ``-``); a company short name is already of that
alphabet and keeps its ``_`` so two companies (``a_b``, ``a-b``) never share file names. The
sequence has at least six digits so that names sort in sequence order.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["MAX_FILE_NAME", "file_name", "slug"]

MAX_FILE_NAME = 200
_NOT_SLUG = re.compile(r"[^a-z0-9_]+")


def slug(text: str, *, keep_underscore: bool = True) -> str:
    """``text`` in lowercase ASCII letters, digits, ``_`` and single ``-`` (``"Ink & Thread"`` → ``ink-thread``)."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    if not keep_underscore:
        folded = folded.replace("_", "-")
    return _NOT_SLUG.sub("-", folded).strip("-_") or "x"


def file_name(tenant: str, company: str, sequence: int) -> str:
    """The name of a company's file number ``sequence``: ``file_name("Acme", "zeta", 17)`` → ``acme-zeta-000017.xml``.

    Raises ``ValueError`` for a sequence below 1. At most ``MAX_FILE_NAME`` characters (the tenant
    part is shortened if needed; the company and sequence never are).
    """
    if sequence < 1:
        raise ValueError(f"a file sequence starts at 1, not {sequence}")
    tail = f"-{slug(company)}-{sequence:06d}.xml"
    head = slug(tenant, keep_underscore=False)[: MAX_FILE_NAME - len(tail)].rstrip("-_") or "x"
    return head + tail
