"""Rebuild the vendored fallback fonts from Debian's Noto packages (run by hand, never at run time).

    apt-get download fonts-noto-core fonts-noto-cjk && for d in *.deb; do dpkg-deb -x "$d" x; done
    .venv/bin/python -m invoicing.delivery.fonts.make_fallbacks x/usr/share/fonts

What it writes next to this file, and why (docs/pdf.md has the table):

* Noto Sans Arabic / Hebrew / Thai / Devanagari, Regular and Bold, copied unchanged
  (fonts-noto-core 20201225): small, and their GSUB/GPOS tables are what text shaping needs.
* Noto Sans CJK JP, Regular and Bold (fonts-noto-cjk 20220127), cut down to the characters of
  JIS X 0208, GB 2312 and KS X 1001 (every kana, the ~6,400 kanji of Japanese, the ~6,800
  hanzi of simplified Chinese, 2,350 common Hangul syllables, CJK punctuation, full-width
  forms) and converted from CFF to TrueType outlines, so the same embedding path as DejaVu
  serves them. The full collection is 60+ MB; the cut is a few MB.

The OFL allows modified versions under another name; "Noto" is not a reserved font name
(the reserved "Source" is not used).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from fontTools import subset as ftsubset
from fontTools import ttLib
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen

_HERE = Path(__file__).resolve().parent
_COPIED = ("NotoSansArabic", "NotoSansHebrew", "NotoSansThai", "NotoSansDevanagari")
_CJK_RANGES = ((0x3000, 0x30FF), (0x31F0, 0x31FF), (0xFF00, 0xFFEF), (0x3200, 0x32FF))


def _double_byte_charset(encoding: str) -> set[int]:
    found = set()
    for lead in range(0xA1, 0xFF):
        for trail in range(0xA1, 0xFF):
            try:
                text = bytes([lead, trail]).decode(encoding)
            except UnicodeDecodeError:
                continue
            if len(text) == 1:
                found.add(ord(text))
    return found


def cjk_repertoire() -> set[int]:
    """Code points the CJK fallback keeps."""
    wanted = _double_byte_charset("euc_jp") | _double_byte_charset("gb2312") | _double_byte_charset("euc_kr")
    for lo, hi in _CJK_RANGES:
        wanted.update(range(lo, hi + 1))
    return wanted


def _to_truetype(font: Any) -> None:
    """CFF outlines to quadratic glyf outlines in place (the fontTools otf2ttf recipe)."""
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyf = ttLib.newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    font["loca"] = ttLib.newTable("loca")
    font["glyf"] = glyf
    for tag in ("CFF ", "VORG", "vhea", "vmtx"):
        if tag in font:
            del font[tag]
    glyf.compile(font)
    hmtx = font["hmtx"]
    for name, glyph in glyf.glyphs.items():
        if hasattr(glyph, "xMin"):
            hmtx[name] = (hmtx[name][0], glyph.xMin)
    maxp = ttLib.newTable("maxp")
    maxp.tableVersion = 0x00010000
    maxp.maxZones = 1
    for field in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                  "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):  # fmt: skip
        setattr(maxp, field, 0)
    font["maxp"] = maxp
    post = font["post"]
    post.formatType = 2.0
    post.extraNames = []
    post.mapping = {}
    post.glyphOrder = order
    font.sfntVersion = "\x00\x01\x00\x00"


def make_cjk(collection: Path, target: Path) -> None:
    font = ttLib.TTFont(collection, fontNumber=0, recalcTimestamp=False)  # 0: Noto Sans CJK JP
    options = ftsubset.Options(layout_features=[], hinting=False, name_IDs=["*"], notdef_outline=True)
    options.drop_tables += ["vhea", "vmtx", "VORG", "BASE", "GSUB", "GPOS"]
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=sorted(cjk_repertoire()))
    subsetter.subset(font)
    _to_truetype(font)
    font.save(target)


def main(source: Path) -> int:
    core, cjk = source / "truetype" / "noto", source / "opentype" / "noto"
    for family in _COPIED:
        for style in ("Regular", "Bold"):
            shutil.copyfile(core / f"{family}-{style}.ttf", _HERE / f"{family}-{style}.ttf")
    for style in ("Regular", "Bold"):
        make_cjk(cjk / f"NotoSansCJK-{style}.ttc", _HERE / f"NotoSansCJKjp-{style}-subset.ttf")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))
