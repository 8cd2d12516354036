"""Split the text of a ``/invoicing …`` slash command into words and ``key=value`` pairs.

Slack sends the text as typed, except that clients turn typed quotes into curly
ones (“ ” ‘ ’) and escape entities: channels as ``<#C123|billing>``, users as
``<@U123>``, auto-linked e-mails as ``<mailto:a@x.com|a@x.com>`` and links as
``<https://x|x>``. The tokenizer undoes all of that so handlers see plain values.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from invoicing.errors import InvalidInput

_QUOTES = {"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2018": "'", "\u2019": "'", "\u00ab": '"', "\u00bb": '"'}
_ESCAPE = re.compile(r"<([^<>]*)>")
_KEY = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Tokens:
    """Positional words and options, in the order typed."""

    words: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)


def _unescape_entity(inner: str) -> str:
    """``#C123|name`` → ``C123``; ``@U1`` → ``U1``; ``mailto:a@x|a@x`` → ``a@x``; ``http…|t`` → ``t``."""
    target, _, label = inner.partition("|")
    if target.startswith("#"):
        return target[1:]
    if target.startswith("@"):
        return target[1:]
    if target.startswith("mailto:"):
        return target.removeprefix("mailto:")
    if target.startswith("!"):
        return label or target
    return label or target


def normalise(text: str) -> str:
    """Straighten quotes, decode ``&amp;``/``&lt;``/``&gt;`` and Slack's ``<…>`` escapes."""
    for curly, straight in _QUOTES.items():
        text = text.replace(curly, straight)
    text = _ESCAPE.sub(lambda m: _unescape_entity(m.group(1)), text)
    return html.unescape(text).replace("\u00a0", " ")


def _split(text: str) -> list[str]:
    """Shell-like split: whitespace separates, quotes group (and may start mid-word: ``name="A B"``)."""
    parts: list[str] = []
    current: list[str] = []
    quote: str | None = None
    started = False
    for ch in text:
        if quote:
            if ch == quote:
                quote = None
            else:
                current.append(ch)
        elif ch == '"' or (ch == "'" and (not current or current[-1] == "=")):
            # An apostrophe inside a word (O'Brien) is text, not a quote.
            quote, started = ch, True
        elif ch.isspace():
            if started:
                parts.append("".join(current))
                current, started = [], False
        else:
            current.append(ch)
            started = True
    if quote:
        raise InvalidInput("text", f"a {quote} quote is not closed; put the value in matching quotes")
    if started:
        parts.append("".join(current))
    return _join_comma_lists(parts)


def _join_comma_lists(parts: list[str]) -> list[str]:
    """``bcc=a@x.com, b@y.com`` arrives as two parts; a dangling comma glues them back."""
    joined: list[str] = []
    for part in parts:
        if joined and (joined[-1].endswith(",") or part.startswith(",")):
            joined[-1] += part
        else:
            joined.append(part)
    return joined


def tokenize(text: str) -> Tokens:
    """Words and ``key=value`` options. Keys are lower-cased; a repeated key is an error."""
    words: list[str] = []
    options: dict[str, str] = {}
    for part in _split(normalise(text)):
        key, sep, value = part.partition("=")
        if sep and _KEY.match(key.lower()):
            key = key.lower()
            if key in options:
                raise InvalidInput(key, "is given twice; give it once")
            options[key] = value
        else:
            words.append(part)
    return Tokens(tuple(words), options)
