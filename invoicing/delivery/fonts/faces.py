"""The typefaces embedded in invoice PDFs, regular and bold, each parsed once per process.

DejaVu Sans Condensed (``FAMILY``) covers Latin, Greek, Cyrillic and the currency signs we
print (licence: ``LICENSE-DejaVu.txt`` next to the TTF files). ``FALLBACKS`` are the Noto
faces for Arabic, Hebrew, Thai, Devanagari and CJK (``LICENSE-Noto.txt``; how they were made:
``make_fallbacks.py``); a document gets one attached only when it prints a character of it
(``attach_fallback``, ``fallback_for``). DejaVu's own Arabic, Hebrew and Thai glyphs are left
out of its character map, so those scripts always take the Noto faces, which shape properly.

Why this module exists: fpdf2's ``add_font`` parses a TTF for every document
(~15 ms a face) and its ``output`` subsets the font in place (~10 ms a face). Here
each face is parsed once; ``attach`` gives a new document light copies that
share the parsed tables but own their glyph map, and ``output`` embeds subsets
cached by glyph set, with the widths, ToUnicode and CIDToGIDMap cached by the
document's character map (``_Face.mapped_tables``). The bytes are exactly those of ``add_font`` + ``FPDF.output``
(``tests/invoicing/delivery/test_pdf.py`` compares both paths) but for the subset
tags: fpdf2 names every subset ``MPDFAA+…``, while ISO 32000-1 §9.6.4 wants a
distinct tag of six uppercase letters for each subset in a file. Here a tag is a
hash of the face and its glyph set, so the same document keeps the same bytes.

The shared parsed tables must never reach fpdf2's own font output: it subsets a
font's tables in place and closes them, so the next document would lack glyphs
(fontTools' ``MissingGlyphsSubsettingError``). So the fast path also writes PDF/A
documents (``FPDF(enforce_compliance="PDF/A-3B")``; for PDF/A-1 it adds the CIDSet
fpdf2 adds), and a document that fpdf2 must embed itself (another font mixed in,
or the plain copies ``FPDF.offset_rendering`` leaves) gets a parse of its own for
each shared face first.

Relies on fpdf2 2.8 internals (``TTFFont`` slots, ``OutputProducer._add_fonts``);
``pyproject.toml`` pins fpdf2 < 2.9 and the equivalence test guards an upgrade.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import logging
import re
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from fontTools import subset as ftsubset
from fontTools import ttLib
from fpdf import FPDF
from fpdf.fonts import CoreFont, SubsetMap, TTFFont
from fpdf.output import (
    CIDSystemInfo,
    OutputProducer,
    PDFFont,
    PDFFontStream,
    _build_cmap_blocks,
    _tt_font_widths,
)
from fpdf.syntax import Name, PDFArray, PDFContentStream

__all__ = ["FALLBACKS", "FAMILY", "attach", "attach_by_add_font", "attach_fallback", "covers", "fallback_for",
           "output", "preload"]

LOGGER = logging.getLogger(__name__)

FAMILY = "DejaVuSansCondensed"
"""Family name to pass to ``FPDF.set_font`` after ``attach``; styles "" and "B"."""

_DIR = Path(__file__).resolve().parent
_FILES = {"": _DIR / "DejaVuSansCondensed.ttf", "B": _DIR / "DejaVuSansCondensed-Bold.ttf"}

FALLBACKS: dict[str, tuple[str, str]] = {
    "NotoSansArabic": ("NotoSansArabic-Regular.ttf", "NotoSansArabic-Bold.ttf"),
    "NotoSansHebrew": ("NotoSansHebrew-Regular.ttf", "NotoSansHebrew-Bold.ttf"),
    "NotoSansThai": ("NotoSansThai-Regular.ttf", "NotoSansThai-Bold.ttf"),
    "NotoSansDevanagari": ("NotoSansDevanagari-Regular.ttf", "NotoSansDevanagari-Bold.ttf"),
    "NotoSansCJKjp": ("NotoSansCJKjp-Regular-subset.ttf", "NotoSansCJKjp-Bold-subset.ttf"),
}
"""Fallback families (regular, bold files) in the order a character is looked up in them."""

# Scripts DejaVu has glyphs for but that a Noto face sets far better (joining, marks, RTL
# metrics): their code points are left out of DejaVu's map, so they fall back.
_ROUTED = ((0x0590, 0x08FF), (0x0E00, 0x0E7F), (0xFB1D, 0xFDFF), (0xFE70, 0xFEFF))

# The options fpdf2 2.8's OutputProducer._add_fonts uses for TrueType subsets.
_DROP_TABLES = ["FFTM", "GDEF", "GPOS", "GSUB", "MATH", "hdmx", "meta", "sbix", "CBDT",
                "CBLC", "EBDT", "EBLC", "EBSC", "SVG ", "CPAL", "COLR"]  # fmt: skip
# Tables TTFFont.__init__ reads before fpdf2 subsets; loading the same ones keeps
# the subsetter's output identical to the add_font path.
_TABLES_READ_BY_FPDF = ("head", "glyf", "hmtx", "OS/2", "post", "hhea", "cmap", "name")
_SUBSET_CACHE_SIZE = 128  # ~15 KB each
_MAPPED_CACHE_SIZE = 512  # ~3 KB each
# Code points of nearly every invoice (Latin, Greek, Cyrillic, punctuation, currency
# signs). Subsetting from a font cut down to these once (~1,000 of 5,900 glyphs) is
# ~2.5x faster than from the full font and yields the same bytes, because the
# subsetter keeps glyph order and recomputes every derived table.
_REPERTOIRE = ((0x20, 0x7E), (0xA0, 0x17F), (0x300, 0x4FF), (0x2000, 0x206F),
               (0x20A0, 0x20CF), (0x2100, 0x214F), (0xFFFD, 0xFFFD))  # fmt: skip


@dataclass(frozen=True)
class _Subset:
    """One embedded subset: the compressed TrueType stream and the new glyph ids."""

    compressed: bytes
    raw_length: int
    glyph_id: dict[str, int]


@dataclass(frozen=True)
class _MappedTables:
    """What a document's font objects derive from its character map (CID → glyph): the widths array,
    the ToUnicode CMap and the compressed CIDToGIDMap (a 128 KB map compressed for every font of every
    document, the largest cost of writing a PDF's fonts), and the CIDs in use."""

    widths: str
    to_unicode: bytes
    cid_to_gid: bytes
    cids: frozenset[int]


class _Face:
    """One parsed TTF face, shared read-only by every document of the process."""

    def __init__(self, style: str, family: str = FAMILY, path: Path | None = None) -> None:
        self.style = style
        self.path = path or _FILES[style]
        self.raw = self.path.read_bytes()
        self.fontkey = family.lower() + style
        self.template = TTFFont(FPDF(), self.path, self.fontkey, style)
        self.shortcut = family == FAMILY  # the cut-down repertoire font only pays off for the main face
        if family == FAMILY:
            self.template.cmap = {
                code: glyph for code, glyph in self.template.cmap.items()
                if not any(lo <= code <= hi for lo, hi in _ROUTED)
            }  # fmt: skip
        self._subsets: OrderedDict[frozenset[str], _Subset] = OrderedDict()
        self._mapped: OrderedDict[tuple[tuple[int, str, object], ...], _MappedTables] = OrderedDict()
        self._lock = threading.Lock()
        self._repertoire: tuple[bytes, frozenset[str]] | None = None

    def new_font(self, index: int) -> TTFFont:
        """A TTFFont for one document: parsed tables shared, glyph map and descriptor own."""
        src = self.template
        font = _SharedFont.__new__(_SharedFont)
        for slot in TTFFont.__slots__:
            if hasattr(src, slot):
                setattr(font, slot, getattr(src, slot))
        font.i = index
        font.biggest_size_pt = 0
        font.missing_glyphs = []
        font.desc = copy.copy(src.desc)  # output() sets the object id and font file on it
        font.subset = SubsetMap(font)
        return font

    def own_tables(self) -> ttLib.TTFont:
        """A parse of this face for one document only, as ``add_font`` makes it (~15 ms)."""
        return TTFFont(FPDF(), self.path, self.fontkey, self.style).ttfont

    def subset(self, glyph_names: Sequence[str]) -> _Subset:
        key = frozenset(glyph_names)
        with self._lock:
            hit = self._subsets.get(key)
            if hit is not None:
                self._subsets.move_to_end(key)
                return hit
        made = self._make_subset(glyph_names)
        with self._lock:
            self._subsets[key] = made
            while len(self._subsets) > _SUBSET_CACHE_SIZE:
                self._subsets.popitem(last=False)
        return made

    def mapped_tables(self, font: TTFFont, embedded: _Subset) -> _MappedTables:
        """``font``'s tables that follow from its character map, cached by that map.

        A document's CIDs are handed out in the order its characters first appear, so documents
        laid out alike (one seller's invoices: same head, same labels, digits in about the same
        order) share their maps. The map names its glyphs, so it also fixes the subset and the
        glyph ids ``embedded`` gives them: the key is the whole answer.
        """
        key = tuple((char_id, glyph.glyph_name, glyph.unicode) for glyph, char_id in font.subset.items()
                    if glyph is not None)  # fmt: skip
        with self._lock:
            hit = self._mapped.get(key)
            if hit is not None:
                self._mapped.move_to_end(key)
                return hit
        code_to_glyph = {char_id: embedded.glyph_id[name] for char_id, name, _ in key}
        cid_to_gid = bytearray(256 * 256 * 2)
        for code, glyph_id in code_to_glyph.items():
            cid_to_gid[code * 2] = glyph_id >> 8
            cid_to_gid[code * 2 + 1] = glyph_id & 0xFF
        made = _MappedTables(widths=_tt_font_widths(font), to_unicode=_to_unicode_cmap(font).encode("latin-1"),
                             cid_to_gid=zlib.compress(bytes(cid_to_gid), PDFContentStream._COMPRESSION_LEVEL),
                             cids=frozenset(code_to_glyph))  # fmt: skip
        with self._lock:
            self._mapped[key] = made
            while len(self._mapped) > _MAPPED_CACHE_SIZE:
                self._mapped.popitem(last=False)
        return made

    def _make_subset(self, glyph_names: Sequence[str], *, shortcut: bool = True) -> _Subset:
        source = self.raw
        if shortcut and self.shortcut:
            repertoire, repertoire_glyphs = self._repertoire_font()
            if repertoire_glyphs.issuperset(glyph_names):
                source = repertoire
        ttfont = _subsetted(source, glyph_names)
        buffer = BytesIO()
        ttfont.save(buffer)
        raw = buffer.getvalue()
        glyph_id = {name: ttfont.getGlyphID(name) for name in glyph_names}
        ttfont.close()
        return _Subset(zlib.compress(raw, PDFContentStream._COMPRESSION_LEVEL), len(raw), glyph_id)

    def _repertoire_font(self) -> tuple[bytes, frozenset[str]]:
        with self._lock:
            if self._repertoire is None:
                cmap = self.template.cmap
                names = sorted({cmap[c] for lo, hi in _REPERTOIRE for c in range(lo, hi + 1) if c in cmap})
                # Keep the glyph names: the final subset looks glyphs up by name.
                ttfont = _subsetted(self.raw, names, keep_glyph_names=True)
                buffer = BytesIO()
                ttfont.save(buffer)
                self._repertoire = (buffer.getvalue(), _glyphs_mapped_alike(cmap, ttfont))
            return self._repertoire


def _glyphs_mapped_alike(full_cmap: dict[int, str], cut: ttLib.TTFont) -> frozenset[str]:
    """Glyphs of ``cut`` that keep all their code points of the full font.

    Only glyph sets made of these may be subset from the cut-down font: a glyph kept
    there merely as a component of another (say "Ʒ" inside "Ǯ") lost its own cmap
    entry, and the final subset would lack it too.
    """
    cut_cmap = cut.getBestCmap()
    full_codes: dict[str, set[int]] = {}
    for code, name in full_cmap.items():
        full_codes.setdefault(name, set()).add(code)
    cut_codes: dict[str, set[int]] = {}
    for code, name in cut_cmap.items():
        cut_codes.setdefault(name, set()).add(code)
    return frozenset(name for name in cut.getGlyphOrder() if full_codes.get(name, set()) == cut_codes.get(name, set()))


def _subsetted(source: bytes, glyph_names: Sequence[str], *, keep_glyph_names: bool = False) -> ttLib.TTFont:
    """``source`` cut down to ``glyph_names`` exactly as fpdf2 2.8's output step does it."""
    ttfont = ttLib.TTFont(BytesIO(source), recalcTimestamp=False, lazy=True)
    for tag in _TABLES_READ_BY_FPDF:
        ttfont[tag]
    options = ftsubset.Options(notdef_outline=True, recommended_glyphs=True)
    options.drop_tables += _DROP_TABLES
    options.glyph_names = keep_glyph_names
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(glyphs=glyph_names)
    subsetter.subset(ttfont)
    return ttfont


class _SharedFont(TTFFont):
    """Marks a font built by ``attach``: output() embeds it through the subset cache."""

    __slots__ = ()


_FACES_LOCK = threading.Lock()
_faces_by_key: dict[str, _Face] | None = None


def _faces() -> dict[str, _Face]:
    """The faces by fpdf2 font key ("dejavusanscondensed", "…B"), in add_font order."""
    global _faces_by_key
    if _faces_by_key is None:
        with _FACES_LOCK:
            if _faces_by_key is None:
                _faces_by_key = {face.fontkey: face for face in (_Face(style) for style in _FILES)}
    return _faces_by_key


_fallbacks_by_key: dict[str, _Face] | None = None


def _fallback_faces() -> dict[str, _Face]:
    """The fallback faces by font key ("notosansarabic", "notosansarabicB", …), parsed on first need."""
    global _fallbacks_by_key
    if _fallbacks_by_key is None:
        with _FACES_LOCK:
            if _fallbacks_by_key is None:
                faces = (_Face(style, family, _DIR / name) for family, files in FALLBACKS.items()
                         for style, name in zip(("", "B"), files, strict=True))  # fmt: skip
                _fallbacks_by_key = {face.fontkey: face for face in faces}
    return _fallbacks_by_key


def _face(fontkey: str) -> _Face:
    main = _faces()
    return main[fontkey] if fontkey in main else _fallback_faces()[fontkey]


def preload() -> None:
    """Parse the faces now (~0.5 s with the fallbacks) instead of during the first render of the process."""
    for face in _faces().values():
        face._repertoire_font()
    _fallback_faces()


def attach(pdf: FPDF) -> None:
    """Make FAMILY (styles "" and "B") available in ``pdf``, without reparsing the TTFs."""
    for face in _faces().values():
        if face.fontkey not in pdf.fonts:
            pdf.fonts[face.fontkey] = face.new_font(len(pdf.fonts) + 1)


def attach_fallback(pdf: FPDF, family: str) -> None:
    """Make the fallback ``family`` (one of FALLBACKS, both styles) available in ``pdf``.

    Attached only to documents that print a character of it, so other documents embed
    nothing more; the font numbers follow the order of first use, so the bytes stay
    those of the same document.
    """
    faces = _fallback_faces()
    for style in ("", "B"):
        face = faces[family.lower() + style]
        if face.fontkey not in pdf.fonts:
            pdf.fonts[face.fontkey] = face.new_font(len(pdf.fonts) + 1)


def fallback_for(codepoint: int) -> str | None:
    """The fallback family that has ``codepoint`` in both styles, or None."""
    return _fallback_map().get(codepoint)


@functools.cache
def _fallback_map() -> dict[int, str]:
    faces = _fallback_faces()
    found: dict[int, str] = {}
    for family in reversed(FALLBACKS):  # the first family listed wins
        regular, bold = faces[family.lower()].template.cmap, faces[family.lower() + "B"].template.cmap
        found.update(dict.fromkeys(regular.keys() & bold.keys(), family))
    return found


def attach_by_add_font(pdf: FPDF) -> None:
    """The plain fpdf2 path (parses the TTFs again); the reference ``attach`` must match."""
    for style, path in _FILES.items():
        pdf.add_font(FAMILY, style, path)


def covers(codepoint: int) -> bool:
    """Whether both DejaVu faces have a glyph for ``codepoint`` (scripts routed to a fallback excluded)."""
    return codepoint in _covered()


@functools.cache
def _covered() -> frozenset[int]:
    regular, bold = (face.template.cmap for face in _faces().values())
    return frozenset(regular.keys() & bold.keys())


def output(pdf: FPDF) -> bytes:
    """``pdf.output()`` for a document whose fonts come from ``attach``."""
    return bytes(pdf.output(output_producer_class=_OutputProducer))


_XMP_CREATED = re.compile(r'xmp:CreateDate="([^"]*)"')
_XMP_STAMPED = re.compile(r'(xmp:(?:ModifyDate|MetadataDate))="[^"]*"')


class _OutputProducer(OutputProducer):
    def _build_xmp_from_info(self) -> str:
        """fpdf2 stamps a PDF/A file's XMP ``ModifyDate`` and ``MetadataDate`` with the time of output, so the same
        invoice rendered twice (a resend, a download a second later) differed. An issued document is never modified:
        both say when it was created (the invoice's issue time), and its bytes depend on the document alone."""
        xmp = super()._build_xmp_from_info()
        created = _XMP_CREATED.search(xmp)
        if created is None:
            return xmp
        return _XMP_STAMPED.sub(lambda stamped: f'{stamped.group(1)}="{created.group(1)}"', xmp)

    def _add_fonts(self, image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name):  # type: ignore[no-untyped-def]
        fonts = sorted(self.fpdf.fonts.values(), key=lambda font: font.i)
        shared = [font for font in fonts if isinstance(font, _SharedFont) and not font.color_font]
        if len(shared) < len(fonts):
            _unshare_tables(fonts)
            return super()._add_fonts(image_objects_per_index, gfxstate_objs_per_name, pattern_objs_per_name)
        font_objs_per_index = {}
        tags: set[str] = set()
        for font in shared:
            font_objs_per_index[font.i] = self._add_shared_font(font, tags)
            font.subset.pick.cache_clear()  # fpdf2 clears these global caches after each font too
            font.subset.get_glyph.cache_clear()
        return font_objs_per_index

    def _add_shared_font(self, font: TTFFont, tags: set[str]) -> PDFFont:
        """Mirror of the TrueType branch of fpdf2 2.8 ``OutputProducer._add_fonts``, but for
        the subset tag: its own, not yet in ``tags`` (those of the document so far)."""
        glyph_names = font.subset.get_all_glyph_names()
        fontname = f"{_subset_tag(font.name, glyph_names, tags)}+{font.name}"
        if font.missing_glyphs:
            LOGGER.warning("font %s lacks glyphs for %s", fontname, [chr(c) for c in font.missing_glyphs[:10]])
        face = _face(font.fontkey)
        embedded = face.subset(glyph_names)
        tables = face.mapped_tables(font, embedded)

        composite = PDFFont(subtype="Type0", base_font=fontname, encoding="Identity-H")
        self._add_pdf_obj(composite, "fonts")
        cid_font = PDFFont(subtype="CIDFontType2", base_font=fontname, d_w=font.desc.missing_width, w=tables.widths)
        self._add_pdf_obj(cid_font, "fonts")
        composite.descendant_fonts = PDFArray([cid_font])

        composite.to_unicode = PDFContentStream(tables.to_unicode)
        self._add_pdf_obj(composite.to_unicode, "fonts")

        cid_font.c_i_d_system_info = CIDSystemInfo()
        self._add_pdf_obj(cid_font.c_i_d_system_info, "fonts")

        descriptor = font.desc
        descriptor.font_name = Name(fontname)
        self._add_pdf_obj(descriptor, "fonts")
        cid_font.font_descriptor = descriptor

        cid_font.c_i_d_to_g_i_d_map = _Compressed(tables.cid_to_gid)
        self._add_pdf_obj(cid_font.c_i_d_to_g_i_d_map, "fonts")

        compliance = self.fpdf._compliance
        if compliance and compliance.profile == "PDFA" and compliance.part == 1:
            # PDF/A-1 wants the CIDs of the subset listed (veraPDF rule 6.3.5-3); as fpdf2 writes it.
            cids = {0, *tables.cids}
            cid_set = bytearray(max(cids) // 8 + 1)
            for cid in cids:
                cid_set[cid // 8] |= 0x80 >> (cid % 8)
            cid_set_stream = PDFContentStream(contents=bytes(cid_set), compress=True)
            self._add_pdf_obj(cid_set_stream, "fonts")
            descriptor.c_i_d_set = cid_set_stream  # type: ignore[attr-defined]

        font_file = _CompressedFontStream(embedded)
        self._add_pdf_obj(font_file, "fonts")
        descriptor.font_file2 = font_file  # type: ignore[attr-defined]
        return composite


def _unshare_tables(fonts: Iterable[CoreFont | TTFFont]) -> None:
    """Give each font that shares a face's parsed tables a parse of its own.

    Besides ``attach``'s fonts this catches their copies: ``TTFFont.__deepcopy__``
    (used by ``FPDF.offset_rendering`` and friends) makes a plain TTFFont that still
    shares the tables.
    """
    if _faces_by_key is None:  # no face parsed yet, so none shared
        return
    faces = [*_faces_by_key.values(), *(_fallbacks_by_key or {}).values()]
    for font in fonts:
        if isinstance(font, TTFFont):
            for face in faces:
                if font.ttfont is face.template.ttfont:
                    font.ttfont = face.own_tables()


def _subset_tag(font_name: str, glyph_names: Iterable[str], taken: set[str]) -> str:
    """Six uppercase letters for the subset of ``font_name`` made of ``glyph_names``; added to ``taken``.

    A hash of the face and the glyph set, so equal subsets get equal tags in every
    process; on the rare clash with a tag already ``taken`` in the document the hash
    is taken again with a counter, keeping the tags of one file distinct.
    """
    basis = "\n".join([font_name, *sorted(set(glyph_names))])
    attempt = 0
    while True:
        digest = hashlib.sha256(f"{basis}\n{attempt}".encode()).digest()
        number, letters = int.from_bytes(digest[:8], "big"), []
        for _ in range(6):
            number, letter = divmod(number, 26)
            letters.append(chr(ord("A") + letter))
        tag = "".join(letters)
        if tag not in taken:
            taken.add(tag)
            return tag
        attempt += 1


class _Compressed(PDFContentStream):
    """A PDFContentStream(contents, compress=True) from contents compressed before (``_MappedTables``)."""

    def __init__(self, compressed: bytes) -> None:
        PDFContentStream.__init__(self, b"")
        self._contents = compressed
        self.filter = Name("FlateDecode")
        self.length = len(compressed)


class _CompressedFontStream(PDFFontStream):
    """A PDFFontStream from already compressed bytes (compressing once per subset, not per document)."""

    def __init__(self, embedded: _Subset) -> None:
        PDFContentStream.__init__(self, b"")
        self._contents = embedded.compressed
        self.filter = Name("FlateDecode")
        self.length = len(embedded.compressed)
        self.length1 = embedded.raw_length


def _to_unicode_cmap(font: TTFFont) -> str:
    def code(unicode: int) -> str:
        if unicode > 0xFFFF:  # UTF-16 surrogate pair
            return f"{0xD800 | (unicode - 0x10000) >> 10:04X}{0xDC00 | (unicode & 0x3FF):04X}"
        return f"{unicode:04X}"

    bf_char = [
        f"<{char_id:04X}> <{''.join(code(c) for c in glyph.unicode)}>\n"
        for glyph, char_id in font.subset.items()
        if glyph is not None and isinstance(glyph.unicode, tuple) and glyph.unicode
    ]
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo\n"
        "<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        f"{_build_cmap_blocks(bf_char, 'bfchar')}"
        "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
    )
