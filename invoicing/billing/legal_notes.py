"""What an invoice says about its VAT categories, in the invoice language.

Two texts per zero-rated category, from one table so they never disagree:

* the **exemption reason** of each 0 % breakdown row (EN 16931 BT-120; ``Z`` gets its
  "zero-rated" text too, ``S`` none), and
* the **legal notes** printed under the totals (``InvoiceDocument.notes``): one per category
  ``K``, ``G``, ``AE``, ``E`` or ``O`` present on the invoice at 0 %, in breakdown order, never
  for a standard-rate (``S``) row — so no note can stand beside a charge it contradicts.

Wording (Directive 2006/112/EC; the reverse-charge phrases are those of Article 226(11a) in each
language version):

===== ====================================================================================
``K`` exempt intra-Community supply of goods, Article 138; a German seller cites
      § 4 Nr. 1b i. V. m. § 6a UStG ("Steuerfreie innergemeinschaftliche Lieferung")
``G`` EU seller: exempt export, Article 146 (German seller: § 4 Nr. 1a i. V. m. § 6 UStG);
      UK seller: zero-rated export (VAT Notice 703); other sellers: no VAT charged on export
``AE`` reverse charge, Article 196 (EU sellers; services only, so only when set per price)
``E`` exempt, with the article of its VATEX code (``VATEX-EU-132`` → Article 132); France's
      ``VATEX-FR-FRANCHISE`` is "TVA non applicable, art. 293 B du CGI"
``O`` not subject to VAT
``Z`` zero-rated (exemption reason only; no note)
===== ====================================================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from invoicing.billing.vat_rules import CATEGORIES, UK, eu_country

_ARTICLE = {
    "en": "Article {} Directive 2006/112/EC",
    "de": "Art. {} Richtlinie 2006/112/EG",
    "fr": "article {} de la directive 2006/112/CE",
    "pl": "art. {} dyrektywy 2006/112/WE",
    "es": "artículo {} de la Directiva 2006/112/CE",
    "it": "articolo {} della direttiva 2006/112/CE",
    "nl": "artikel {} van Richtlijn 2006/112/EG",
}
_PHRASES: dict[str, dict[str, str]] = {
    "K": {
        "en": "Exempt intra-Community supply of goods",
        "de": "Steuerfreie innergemeinschaftliche Lieferung",
        "fr": "Livraison intracommunautaire de biens exonérée de TVA",
        "pl": "Wewnątrzwspólnotowa dostawa towarów zwolniona z VAT",
        "es": "Entrega intracomunitaria de bienes exenta de IVA",
        "it": "Cessione intracomunitaria di beni non imponibile",
        "nl": "Vrijgestelde intracommunautaire levering van goederen",
    },
    "G": {
        "en": "Exempt export of goods outside the EU",
        "de": "Steuerfreie Ausfuhrlieferung",
        "fr": "Exportation de biens hors de l'UE exonérée de TVA",
        "pl": "Eksport towarów poza UE zwolniony z VAT",
        "es": "Exportación de bienes fuera de la UE exenta de IVA",
        "it": "Esportazione di beni fuori dall'UE non imponibile",
        "nl": "Vrijgestelde uitvoer van goederen buiten de EU",
    },
    "G-UK": {
        "en": "Zero-rated export of goods (VAT Notice 703)",
        "de": "Ausfuhrlieferung zum Nullsatz (UK VAT Notice 703)",
        "fr": "Exportation de biens au taux zéro (UK VAT Notice 703)",
        "pl": "Eksport towarów ze stawką 0% (UK VAT Notice 703)",
        "es": "Exportación de bienes a tipo cero (UK VAT Notice 703)",
        "it": "Esportazione di beni ad aliquota zero (UK VAT Notice 703)",
        "nl": "Uitvoer van goederen tegen nultarief (UK VAT Notice 703)",
    },
    "G-other": {
        "en": "Export of goods: no VAT charged",
        "de": "Ausfuhrlieferung: keine Umsatzsteuer berechnet",
        "fr": "Exportation de biens : pas de TVA facturée",
        "pl": "Eksport towarów: VAT nie został naliczony",
        "es": "Exportación de bienes: sin IVA",
        "it": "Esportazione di beni: IVA non addebitata",
        "nl": "Uitvoer van goederen: geen btw in rekening gebracht",
    },
    "AE": {
        "en": "Reverse charge: VAT to be accounted for by the recipient",
        "de": "Steuerschuldnerschaft des Leistungsempfängers",
        "fr": "Autoliquidation",
        "pl": "Odwrotne obciążenie",
        "es": "Inversión del sujeto pasivo",
        "it": "Inversione contabile",
        "nl": "Btw verlegd",
    },
    "E": {
        "en": "Exempt from VAT",
        "de": "Steuerfrei",
        "fr": "Exonération de TVA",
        "pl": "Zwolnione z VAT",
        "es": "Exento de IVA",
        "it": "Esente IVA",
        "nl": "Vrijgesteld van btw",
    },
    "O": {
        "en": "Not subject to VAT",
        "de": "Nicht steuerbar",
        "fr": "Non soumis à la TVA",
        "pl": "Niepodlegające opodatkowaniu VAT",
        "es": "No sujeto a IVA",
        "it": "Fuori campo IVA",
        "nl": "Niet onderworpen aan btw",
    },
    "Z": {
        "en": "Zero-rated",
        "de": "Nullsteuersatz",
        "fr": "Taux zéro",
        "pl": "Stawka 0%",
        "es": "Tipo cero",
        "it": "Aliquota zero",
        "nl": "Nultarief",
    },
}
#: The German statute a German seller cites instead of only the Directive.
_USTG = {"K": "§ 4 Nr. 1b i. V. m. § 6a UStG", "G": "§ 4 Nr. 1a i. V. m. § 6 UStG"}
_FRANCHISE = "TVA non applicable, art. 293 B du CGI"
#: Categories that get a legal note under the totals (Z only a reason on its row, S nothing).
NOTE_CATEGORIES = frozenset({"K", "G", "AE", "E", "O"})
ZERO = Decimal(0)


def _phrase(key: str, language: str) -> str:
    table = _PHRASES[key]
    return table.get(language, table["en"])


def _article(number: str, language: str) -> str:
    return _ARTICLE.get(language, _ARTICLE["en"]).format(number)


def exemption_reason(category: str, seller_country: str, language: str, exempt_code: str = "") -> str:
    """The reason a 0 % row of ``category`` carries no VAT, in ``language`` ("" for ``S``); see the table above."""
    seller = seller_country.strip().upper()
    in_eu = eu_country(seller) is not None
    if category in ("K", "G") and seller == "DE":
        phrase = _phrase(category, language)
        if language == "de":
            return f"{phrase} ({_USTG[category]})"
        return f"{phrase} ({_USTG[category]}; {_article('138' if category == 'K' else '146', language)})"
    if category == "K":
        return f"{_phrase('K', language)} ({_article('138', language)})"
    if category == "G":
        if in_eu:
            return f"{_phrase('G', language)} ({_article('146', language)})"
        return _phrase("G-UK" if seller in UK else "G-other", language)
    if category == "AE":
        phrase = _phrase("AE", language)
        return f"{phrase} ({_article('196', language)})" if in_eu else phrase
    if category == "E":
        if exempt_code == "VATEX-FR-FRANCHISE":
            return _FRANCHISE if language == "fr" else f"{_phrase('E', language)} ({_FRANCHISE})"
        article = exempt_code.removeprefix("VATEX-EU-").split("-")[0]
        return f"{_phrase('E', language)} ({_article(article, language)})" if article else _phrase("E", language)
    if category in ("O", "Z"):
        return _phrase(category, language)
    return ""


def legal_notes(bands: Iterable[tuple[str, Decimal, str]], seller_country: str, language: str) -> tuple[str, ...]:
    """The notes for an invoice whose breakdown has these ``(category, rate, exemption code)`` rows.

    One note per distinct reason of a ``NOTE_CATEGORIES`` row at 0 %, in ``CATEGORIES`` order,
    each ending with a full stop. A row above 0 % never gets a note (whatever its category says).
    """
    rows = sorted(((c, code) for c, rate, code in bands if c in NOTE_CATEGORIES and rate == ZERO),
                  key=lambda row: (CATEGORIES.index(row[0]), row[1]))
    notes: list[str] = []
    for category, code in rows:
        note = exemption_reason(category, seller_country, language, code) + "."
        if note not in notes:
            notes.append(note)
    return tuple(notes)
