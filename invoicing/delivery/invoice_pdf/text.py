"""Text on the invoice page: one FPDF subclass that measures, wraps and draws lines in any script.

Two paths, so ordinary invoices stay fast:

* **plain** text — every character in DejaVu Sans Condensed, no script that needs shaping
  (Latin, Greek, Cyrillic, signs): measured from the font's width table and drawn with
  ``FPDF.text``, as before.
* **complex** text — a character only a fallback face has (CJK, Arabic, Hebrew, Thai,
  Devanagari; ``fonts.FALLBACKS``): the fallback families it needs are attached to this
  document, fpdf2's ``set_fallback_fonts`` picks them per character, and for the scripts
  that join, reorder or stack (Arabic, Hebrew, Thai, Devanagari) HarfBuzz shaping with the
  Unicode bidi algorithm is on (``set_text_shaping``). Drawn with ``FPDF.cell``.

Nothing is ever cut: ``wrap`` breaks at spaces, between CJK characters, and inside a word
longer than the line (at character boundaries, marks kept with their base). Figures do not
wrap; ``fitted_size`` shrinks them instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from fpdf import FPDF
from fpdf.fonts import TTFFont

from invoicing.delivery.fonts import faces as fonts
from invoicing.validation import is_control_character

__all__ = ["INK", "MUTED", "TextPDF", "clean"]

INK, MUTED = (17, 24, 39), (107, 114, 128)
_PT = 25.4 / 72  # mm per point
# Scripts HarfBuzz must shape (joining, reordering, stacking marks) and the bidi algorithm order.
_SHAPED = re.compile(r"[\u0590-\u08FF\u0900-\u097F\u0E00-\u0E7F\uFB1D-\uFDFF\uFE70-\uFEFF]")
# Characters a line may break before or after without a space (CJK ideographs, kana, Hangul, full-width forms).
_CJK_UNIT = r"[\u2E80-\u9FFF\uAC00-\uD7AF\uF900-\uFAFF\uFF00-\uFFEF]"
_UNITS = re.compile(rf"{_CJK_UNIT}|(?:(?!{_CJK_UNIT})[\S\xa0\u202f\u2007])+")
_BREAKING_SPACE = re.compile(r"[^\S\xa0\u202f\u2007]+")  # whitespace a line may break at: not the no-break spaces


#: Characters given their place in both faces' subsets before anything is drawn, in this order. fpdf2 numbers
#: a document's characters in the order of first use, so two invoices whose buyers' names differ had different
#: character maps and glyph sets, and each paid for its own font subset, widths, ToUnicode and CIDToGIDMap
#: (``fonts.faces``: 1 ms when only the order differs, 12 ms for a new glyph set). With printable ASCII placed
#: first, every invoice printed in it shares one map and one subset per face; a character beyond it is
#: appended as before. The subsets carry the ASCII glyphs an invoice does not print (a few KB).
_PRESET = tuple(range(0x21, 0x7F))

#: Width of a plain text in font units per point, by (text, bold): the same in every document, whose
#: main family is always the one face (``fonts.FAMILY``); labels, SKUs and figures repeat across invoices.
_PLAIN_UNITS: dict[tuple[str, bool], float] = {}
_PLAIN_UNITS_MAX = 16384  # then it starts again: a bound, not an eviction policy


@lru_cache(maxsize=4096)  # names, SKUs and descriptions repeat from line to line
def clean(text: str) -> str:
    """One printable line: NFC, controls and line separators as spaces, characters no face has as U+FFFD."""
    text = unicodedata.normalize("NFC", text)
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        if is_control_character(ch):
            out.append(" ")
        elif unicodedata.category(ch) in ("Cf", "Cs", "Co", "Cn"):
            continue
        else:
            code = ord(ch)
            out.append(ch if fonts.covers(code) or fonts.fallback_for(code) else "\ufffd")
    return "".join(out)


@lru_cache(maxsize=4096)
def _is_plain(text: str) -> bool:
    return text.isascii() or all(fonts.covers(ord(ch)) for ch in text)


@lru_cache(maxsize=1024)
def _fallbacks_of(text: str) -> tuple[str, ...]:
    found = {fonts.fallback_for(ord(ch)) for ch in text if not fonts.covers(ord(ch))}
    return tuple(family for family in fonts.FALLBACKS if family in found)


class TextPDF(FPDF):
    """An A4 FPDF that draws single lines at a baseline and wraps paragraphs, in any script."""

    def __init__(self, attach_fonts: Callable[[FPDF], None], *, enforce_compliance: str | None = None) -> None:
        super().__init__(orientation="P", unit="mm", format="A4", enforce_compliance=enforce_compliance)
        attach_fonts(self)
        for style in ("", "B"):  # see _PRESET
            face = self.fonts[fonts.FAMILY.lower() + style]
            assert isinstance(face, TTFFont)
            for code in _PRESET:
                face.subset.pick(code)
        # fpdf2 types ``cw`` as keyed by glyph name; it is indexed by code point.
        self._widths: dict[str, Any] = {style: self.fonts[fonts.FAMILY.lower() + style].cw for style in ("", "B")}
        self._wrapped: dict[tuple[str, float, float, bool, bool], tuple[str, ...]] = {}
        # (font, text) -> its ``Tj`` operator: exact for the rest of this document, see _plain_text.
        self._encoded: dict[tuple[str, str], str] = {}
        # What _use_font last set, to skip redundant set_font/set_text_color calls.
        self._font_key: tuple[bool, float] | None = None
        self._color: tuple[int, int, int] | None = None
        self._color_op = ""  # the text colour operator, written around text as FPDF.text does
        self._fallbacks: tuple[str, ...] = ()
        self._shaping = False
        self.c_margin = 0
        self.set_auto_page_break(False)

    def _use_font(self, bold: bool, size: float) -> None:
        if self._font_key != (bold, size):
            self.set_font(fonts.FAMILY, "B" if bold else "", size)
            self._font_key = (bold, size)

    def _prepare_complex(self, text: str) -> None:
        """Attach the fallback faces ``text`` needs and switch shaping to what it needs."""
        needed = _fallbacks_of(text)
        if not set(needed) <= set(self._fallbacks):
            for family in needed:
                fonts.attach_fallback(self, family)
            self._fallbacks = tuple(f for f in fonts.FALLBACKS if f in {*needed, *self._fallbacks})
            self.set_fallback_fonts(list(self._fallbacks), exact_match=False)
        shaping = _SHAPED.search(text) is not None
        if shaping != self._shaping:
            self.set_text_shaping(shaping)
            self._shaping = shaping

    # -- measuring ---------------------------------------------------------------------

    def width(self, text: str, size: float, bold: bool = False) -> float:
        """Printed width of one line in mm."""
        if _is_plain(text):
            key = (text, bold)
            units = _PLAIN_UNITS.get(key)
            if units is None:
                if len(_PLAIN_UNITS) >= _PLAIN_UNITS_MAX:
                    _PLAIN_UNITS.clear()
                cw = self._widths["B" if bold else ""]
                units = _PLAIN_UNITS[key] = float(sum(cw[ord(ch)] for ch in text))
            return units * size * _PT / 1000
        self._prepare_complex(text)
        self._use_font(bold, size)
        return float(self.get_string_width(text))

    def fitted_size(self, text: str, max_width: float, size: float, min_size: float, bold: bool = False) -> float:
        """``size``, or smaller (not below ``min_size``) so that ``text`` fits ``max_width``."""
        natural = self.width(text, size, bold)
        return size if natural <= max_width else max(min_size, size * max_width / natural)

    def wrap(self, text: str, max_width: float, size: float, bold: bool = False, *,
             break_words: bool = True) -> tuple[str, ...]:  # fmt: skip
        """``text`` as lines no wider than ``max_width``; every character kept, in order.

        With ``break_words=False`` a word longer than the line stays whole (the caller shrinks it).
        """
        key = (text, max_width, size, bold, break_words)
        if key not in self._wrapped:
            self._wrapped[key] = tuple(self._wrap(text, max_width, size, bold, break_words))
        return self._wrapped[key]

    def _wrap(self, text: str, max_width: float, size: float, bold: bool, break_words: bool) -> list[str]:
        if self.width(text, size, bold) <= max_width:
            stripped = " ".join(_words(text))
            return [stripped] if stripped else []
        lines: list[str] = []
        current = ""
        for start, unit in _units(text):
            glue = " " if current and start else ""
            candidate = current + glue + unit
            if self.width(candidate, size, bold) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            current = ""
            for piece in _clusters(unit) if break_words else [unit]:
                if current and self.width(current + piece, size, bold) > max_width:
                    lines.append(current)
                    current = ""
                current += piece
        if current:
            lines.append(current)
        return lines

    # -- drawing -----------------------------------------------------------------------

    def put(self, x: float, y: float, text: str, size: float, *, bold: bool = False,
            color: tuple[int, int, int] = INK, right: bool = False) -> None:  # fmt: skip
        """Draw one line with its baseline at ``y``; with ``right``, ``x`` is the right edge."""
        if not text:
            return
        if self._color != color:
            self.set_text_color(*color)
            self._color = color
            assert self.text_color is not None
            self._color_op = self.text_color.serialize().lower()
        if _is_plain(text):
            self._use_font(bold, size)
            self._plain_text(x - self.width(text, size, bold) if right else x, y, text)
            return
        width = self.width(text, size, bold)  # also prepares fonts and shaping
        height = size * _PT
        self.set_xy(x - width if right else x, y - 0.8 * height)  # fpdf2 sets the baseline at 0.5 h + 0.3 size
        # cell() switches fonts inside its text object and may leave the page's font state
        # differing from fpdf2's idea of it: state the main font before, forget it after.
        assert self.current_font is not None
        self._out(self._set_font_for_page(self.current_font, self.font_size_pt))
        self.cell(w=width, h=height, text=text)
        self.current_font_is_set_on_page = False
        self._font_key = None

    def _plain_text(self, x: float, y: float, text: str) -> None:
        """``FPDF.text`` for the plain path, without its per-call checks (a third of a render's time).

        Writes the same operators as ``FPDF.text`` does with fill text mode, no underline and
        no quad points, which this class never sets. A text's encoding is kept for the rest of
        the document: it is the text's glyph ids in this document's font subset, which a
        character keeps from its first use on (labels, SKUs and figures repeat from row to row).
        """
        font = self.current_font
        assert font is not None
        if not self.current_font_is_set_on_page:
            self._out(self._set_font_for_page(font, self.font_size_pt))
        key = (font.fontkey, text)
        encoded = self._encoded.get(key)
        if encoded is None:
            encoded = self._encoded[key] = font.encode_text(text)
        k = self.k
        op = f"BT {x * k:.2f} {(self.h - y) * k:.2f} Td {encoded} ET"
        self._out(f"q {self._color_op} {op} Q" if self.fill_color != self.text_color else op)

    def put_lines(self, x: float, y: float, lines: tuple[str, ...] | list[str], size: float, step: float, *,
                  bold: bool = False, color: tuple[int, int, int] = INK, right: bool = False) -> float:  # fmt: skip
        """Draw ``lines`` from baseline ``y`` down; returns the baseline after the last one."""
        for line in lines:
            self.put(x, y, line, size, bold=bold, color=color, right=right)
            y += step
        return y


def _units(text: str) -> list[tuple[bool, str]]:
    """Break units of ``text``: words, and each CJK character alone; True where a space precedes."""
    units: list[tuple[bool, str]] = []
    for word in _words(text):
        for i, match in enumerate(_UNITS.finditer(word)):
            units.append((i == 0, match.group()))
    return units


def _words(text: str) -> list[str]:
    return [word for word in _BREAKING_SPACE.split(text) if word]


def _clusters(word: str) -> list[str]:
    """``word`` as characters with their combining marks, the pieces a too-long word breaks into."""
    pieces: list[str] = []
    for ch in word:
        if pieces and (unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Mc", "Me")):
            pieces[-1] += ch
        else:
            pieces.append(ch)
    return pieces
