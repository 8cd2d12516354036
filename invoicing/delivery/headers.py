"""RFC 2047 / RFC 5322 header values that any strict parser reads back exactly.

Why not the stdlib's own folding: on Python 3.11 ``email.policy`` (SMTP and default)
folds non-ASCII ``Subject`` and ``From`` values wrongly in three ways we saw on invoices
with Polish, Greek, Japanese and Arabic seller names:

* a value ending in ASCII right after a fold gets an empty encoded-word ``=?utf-8?q??=``
  at the end (every resend's Subject "… Ltd =?utf-8?q??=");
* encoded-words of 76 characters (RFC 2047 §2 allows at most 75);
* a space dropped or doubled where a fold meets an encoded-word ("2026 —£1.00"), and an
  encoded-word cut inside a base64 quantum ("=?utf-8?b?4 oCU?=").

So the values are encoded and folded here and handed to the policy as header objects that
fold to exactly these bytes (``folded_header``); everything else (CRLF line ends, the refusal
of CR/LF inside values, MIME structure) stays with the stdlib ``SMTP`` policy. The rules:

* Runs of words that are plain printable ASCII (for a display name: RFC 5322 atoms) stay as
  they are; every other run of words is encoded as UTF-8 encoded-words, ``Q`` or ``B``,
  whichever is shorter, each **at most 75 characters**, never empty, never splitting a
  character, preferably ending just after a space of the text.
* Lines are folded at whitespace only, **at most 76 characters** (RFC 2047 §2), so unfolding
  gives back every space: the whitespace between a word and an encoded-word is the text's
  space, the whitespace between two encoded-words is ignored by decoders (RFC 2047 §6.2),
  and the spaces of an encoded run are inside the encoded text.
* An ASCII display name with specials (commas, quotes, parentheses) is one quoted-string.

Known limit of one decoder, not of these headers: Python < 3.13's ``email`` parser adds a
space between two adjacent encoded-words of a display name (CPython gh-128110); a long
non-ASCII seller name read back by that parser shows an extra space where it was folded.
"""

from __future__ import annotations

import base64
from email.headerregistry import Address, AddressHeader, Group
from email.policy import Policy

#: RFC 2047 §2: an encoded-word is at most 75 characters; a line holding one at most 76.
MAX_ENCODED_WORD = 75
MAX_LINE = 76
_PREFIX = "=?utf-8?{}?"
_SUFFIX = "?="
_ROOM = MAX_ENCODED_WORD - len(_PREFIX.format("q")) - len(_SUFFIX)
#: Q-encoding may leave these as they are in any header (RFC 2047 §5 (3), the strictest case).
_Q_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
#: RFC 5322 atext: a display-name word made of these needs neither quotes nor encoding.
_ATEXT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~")


class FoldedHeader(str):
    """A header value (its decoded text) that folds to the wire form computed here.

    The stdlib policies store a value that has a matching ``name`` as is and call its
    ``fold``; ``str(value)`` is the text a reader sees, so code comparing headers still works.
    """

    name: str
    wire: str

    def __new__(cls, name: str, text: str, wire: str) -> FoldedHeader:
        value = super().__new__(cls, text)
        value.name, value.wire = name, wire
        return value

    def __getnewargs__(self) -> tuple[str, str, str]:  # type: ignore[override]  # copy.deepcopy (the SMTPUTF8 downgrade copies messages)
        return self.name, str(self), self.wire

    def fold(self, *, policy: Policy) -> str:
        """``Name: value`` with its folds, ending in the policy's line separator.

        Under an SMTPUTF8 policy (``utf8=True``) non-ASCII text is written as UTF-8, not as
        encoded-words, so the stdlib folds it (its RFC 2047 bugs do not arise there).
        """
        if getattr(policy, "utf8", False):
            folded: str = policy.header_factory(self.name, str(self)).fold(policy=policy)  # type: ignore[attr-defined]
            return folded
        return f"{self.name}:{self.wire}".replace("\r\n", policy.linesep) + policy.linesep


class FoldedAddressHeader(FoldedHeader, AddressHeader):
    """``FoldedHeader`` of one mailbox that also answers like the stdlib's address headers
    (``addresses``, ``groups``), so code that inspects addresses (the SMTPUTF8 downgrade) still can."""

    _addresses: tuple[Address, ...]
    _groups: tuple[Group, ...]

    def __new__(cls, name: str, text: str, wire: str, address: Address | None = None) -> FoldedAddressHeader:
        value = str.__new__(cls, text)
        assert address is not None
        value.name, value.wire = name, wire
        value._addresses = (address,)
        value._groups = (Group(None, [address]),)
        return value

    def __getnewargs__(self) -> tuple[str, str, str, Address]:  # type: ignore[override]
        return self.name, str(self), self.wire, self._addresses[0]

    @property
    def defects(self) -> tuple[object, ...]:
        return ()


def folded_header(name: str, text: str) -> FoldedHeader:
    """An unstructured header (``Subject``) holding ``text`` (one line, no control characters)."""
    return FoldedHeader(name, text, _fold(name, _unstructured_tokens(text)))


def address_header(name: str, address: Address) -> FoldedAddressHeader:
    """A one-mailbox address header (``From``): display name encoded as needed, then ``<addr-spec>``."""
    spec = f"<{address.addr_spec}>"
    tokens = [*_phrase_tokens(address.display_name), spec] if address.display_name else [address.addr_spec]
    return FoldedAddressHeader(name, str(address), _fold(name, tokens), address)


def encoded_words(text: str) -> list[str]:
    """``text`` as UTF-8 encoded-words (Q or B, the shorter), each at most 75 characters.

    Decoding them one after another (the whitespace between them ignored) gives ``text``
    back exactly, spaces included.
    """
    q = _chunks(text, "q")
    b = _chunks(text, "b")
    return q if sum(map(len, q)) <= sum(map(len, b)) else b


def _q(char: str) -> str:
    if char == " ":
        return "_"
    if char in _Q_SAFE:
        return char
    return "".join(f"={byte:02X}" for byte in char.encode("utf-8"))


def _b_len(size: int) -> int:
    return 4 * ((size + 2) // 3)


def _chunks(text: str, kind: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    size = 0  # encoded length (q) or UTF-8 bytes (b) of ``current``
    for char in text:
        cost = len(_q(char)) if kind == "q" else len(char.encode("utf-8"))
        if (size + cost if kind == "q" else _b_len(size + cost)) > _ROOM and current:
            current, carry = _at_space(current)
            pieces.append("".join(current))
            current = carry
            size = sum(len(_q(c)) if kind == "q" else len(c.encode("utf-8")) for c in current)
        current.append(char)
        size += cost
    if current:
        pieces.append("".join(current))
    prefix = _PREFIX.format(kind)
    if kind == "q":
        return [prefix + "".join(_q(c) for c in piece) + _SUFFIX for piece in pieces]
    return [prefix + base64.b64encode(piece.encode("utf-8")).decode("ascii") + _SUFFIX for piece in pieces]


def _at_space(chars: list[str]) -> tuple[list[str], list[str]]:
    """Split a full chunk just after its last space in its second half (the rest starts the next chunk)."""
    for index in range(len(chars) - 1, max(len(chars) // 2, 1) - 1, -1):
        if chars[index - 1] == " ":
            return chars[:index], chars[index:]
    return chars, []


def _runs(words: list[str], plain: frozenset[str] | None) -> list[tuple[bool, str]]:
    """Consecutive words grouped as (is_plain, text joined with spaces)."""
    runs: list[tuple[bool, str]] = []
    for word in words:
        is_plain = bool(word) and word.isascii() and word.isprintable() and "=?" not in word and "?=" not in word \
            and (plain is None or all(c in plain for c in word)) and len(word) <= MAX_LINE - 2
        if runs and runs[-1][0] == is_plain:
            runs[-1] = (is_plain, f"{runs[-1][1]} {word}")
        else:
            runs.append((is_plain, word))
    return runs


def _unstructured_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for is_plain, run in _runs(text.split(" "), None):
        tokens.extend(run.split(" ") if is_plain else encoded_words(run))
    return tokens


def _phrase_tokens(display_name: str) -> list[str]:
    if display_name.isascii():
        if all(c in _ATEXT or c == " " for c in display_name) and "  " not in display_name.strip():
            return display_name.split()
        quoted = display_name.replace("\\", "\\\\").replace('"', '\\"')
        return [f'"{quoted}"']
    tokens: list[str] = []
    for is_plain, run in _runs(display_name.split(" "), _ATEXT):
        tokens.extend(run.split(" ") if is_plain else encoded_words(run))
    return tokens


def _fold(name: str, tokens: list[str]) -> str:
    """What follows ``Name:``: the tokens, each after a space or, where a line would pass 76
    characters, after a fold (CRLF + space); the first token may go on the next line too."""
    out = ""
    line = len(name) + 1
    for token in tokens:
        if line + 1 + len(token) > MAX_LINE and (out or len(token) + 1 <= MAX_LINE):
            out += f"\r\n {token}"
        else:
            out += f" {token}"
        line = len(out) - out.rfind("\n") - 1 if "\n" in out else len(name) + 1 + len(out)
    return out
