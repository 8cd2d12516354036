"""Every word the invoice PDF prints, in each invoice language (``InvoiceDocument.language``).

``labels_for(language)`` returns the table for one language; a language we do not have falls
back to English as a whole, so one PDF never mixes two languages. Values with ``{…}`` are
``str.format`` templates. ``locale_for(language, country)`` is the babel locale that numbers
and dates are written in: the language's, in the buyer's country where babel knows that
combination (``de`` + AT → ``de_AT``), else the language's home country.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from babel import Locale, UnknownLocaleError

__all__ = ["LANGUAGES", "labels_for", "locale_for"]

_HOME = {"en": "en_GB", "de": "de_DE", "fr": "fr_FR", "pl": "pl_PL", "es": "es_ES", "it": "it_IT", "nl": "nl_NL"}
LANGUAGES = tuple(_HOME)

_EN = {
    "invoice": "Invoice", "credit_note": "Credit note",
    "invoice_title": "INVOICE", "credit_note_title": "CREDIT NOTE",
    "invoice_no": "Invoice no.", "credit_note_no": "Credit note no.",
    "issue_date": "Issue date", "period": "Period", "due_date": "Due date", "currency": "Currency",
    "up_to": "up to {date}", "bill_to": "BILL TO", "amount_due": "AMOUNT DUE", "amount_credited": "AMOUNT CREDITED",
    "due_on": "Due {date}", "terms_receipt": "Payment due on receipt", "terms_days": "Payment due within {days} days",
    "vat_no": "VAT no.", "company_no": "Company no.",
    "col_order": "Order ref", "col_dispatched": "Dispatched", "col_sku": "SKU", "col_description": "Description",
    "col_qty": "Qty", "col_cost": "Unit cost", "col_shipping": "Shipping", "col_unit": "Unit price",
    "col_rate": "VAT %", "col_category": "Cat.", "col_net": "Net {currency}",
    "net_total": "Net total", "vat_on": "VAT {rate} % ({category}) on {net}", "vat_total": "VAT total",
    "total_due": "Total due ({currency})", "total_credited": "Total credited ({currency})",
    "payment": "PAYMENT", "bank_transfer": "Bank transfer to {name}", "iban": "IBAN", "bic": "BIC",
    "reference": "Reference", "refund": "The credited amount is refunded or set against open invoices.",
    "page": "{title} {number} · Page {page} of {pages}", "continued": "{title} {number} (continued)",
    "credits": "Credits invoice {number} of {date}", "reason": "Reason: {reason}",
    "fx": "VAT in {currency} at {rate} ({source}, {date})", "fx_total": "Total VAT",
    "source_ecb": "ECB", "source_other": "seller's rate",
    "categories": "VAT categories",
    "cat_S": "standard rate", "cat_Z": "zero rated", "cat_E": "exempt", "cat_AE": "reverse charge",
    "cat_K": "intra-Community supply", "cat_G": "export of goods", "cat_O": "outside the scope of VAT",
}  # fmt: skip

_DE = {
    "invoice": "Rechnung", "credit_note": "Rechnungskorrektur",
    "invoice_title": "RECHNUNG", "credit_note_title": "RECHNUNGSKORREKTUR",
    "invoice_no": "Rechnungsnr.", "credit_note_no": "Korrektur-Nr.",
    "issue_date": "Rechnungsdatum", "period": "Leistungszeitraum", "due_date": "Fällig am", "currency": "Währung",
    "up_to": "bis {date}", "bill_to": "RECHNUNGSEMPFÄNGER", "amount_due": "ZAHLBETRAG",
    "amount_credited": "GUTGESCHRIEBEN",
    "due_on": "Fällig am {date}", "terms_receipt": "Zahlbar sofort nach Erhalt",
    "terms_days": "Zahlbar innerhalb von {days} Tagen",
    "vat_no": "USt-IdNr.", "company_no": "Handelsregister",
    "col_order": "Auftrag", "col_dispatched": "Versand", "col_sku": "Artikel", "col_description": "Beschreibung",
    "col_qty": "Anz.", "col_cost": "Stückpreis", "col_shipping": "Versand je Stk.", "col_unit": "Preis je Stk.",
    "col_rate": "USt. %", "col_category": "Kat.", "col_net": "Netto {currency}",
    "net_total": "Nettobetrag", "vat_on": "USt. {rate} % ({category}) auf {net}", "vat_total": "USt. gesamt",
    "total_due": "Gesamtbetrag ({currency})", "total_credited": "Gutschrift gesamt ({currency})",
    "payment": "ZAHLUNG", "bank_transfer": "Überweisung an {name}", "iban": "IBAN", "bic": "BIC",
    "reference": "Verwendungszweck", "refund": "Der Betrag wird erstattet oder mit offenen Rechnungen verrechnet.",
    "page": "{title} {number} · Seite {page} von {pages}", "continued": "{title} {number} (Fortsetzung)",
    "credits": "Korrigiert Rechnung {number} vom {date}", "reason": "Grund: {reason}",
    "fx": "USt. in {currency} zum Kurs {rate} ({source}, {date})", "fx_total": "USt. gesamt",
    "source_ecb": "EZB", "source_other": "Kurs des Verkäufers",
    "categories": "USt.-Kategorien",
    "cat_S": "Regelsteuersatz", "cat_Z": "Nullsatz", "cat_E": "steuerbefreit", "cat_AE": "Steuerschuldnerschaft "
    "des Leistungsempfängers", "cat_K": "innergemeinschaftliche Lieferung", "cat_G": "Ausfuhrlieferung",
    "cat_O": "nicht steuerbar",
}  # fmt: skip

_FR = {
    "invoice": "Facture", "credit_note": "Avoir",
    "invoice_title": "FACTURE", "credit_note_title": "AVOIR",
    "invoice_no": "Facture n°", "credit_note_no": "Avoir n°",
    "issue_date": "Date d'émission", "period": "Période", "due_date": "Échéance", "currency": "Devise",
    "up_to": "jusqu'au {date}", "bill_to": "FACTURÉ À", "amount_due": "MONTANT DÛ",
    "amount_credited": "MONTANT CRÉDITÉ",
    "due_on": "À payer le {date}", "terms_receipt": "Paiement à réception",
    "terms_days": "Paiement sous {days} jours",
    "vat_no": "N° TVA", "company_no": "N° d'immatriculation",
    "col_order": "Commande", "col_dispatched": "Expédié", "col_sku": "Réf.", "col_description": "Désignation",
    "col_qty": "Qté", "col_cost": "Prix unit.", "col_shipping": "Port unit.", "col_unit": "P.U. total",
    "col_rate": "TVA %", "col_category": "Cat.", "col_net": "HT {currency}",
    "net_total": "Total HT", "vat_on": "TVA {rate} % ({category}) sur {net}", "vat_total": "Total TVA",
    "total_due": "Total TTC ({currency})", "total_credited": "Total de l'avoir ({currency})",
    "payment": "PAIEMENT", "bank_transfer": "Virement à {name}", "iban": "IBAN", "bic": "BIC",
    "reference": "Référence", "refund": "Le montant est remboursé ou imputé sur les factures ouvertes.",
    "page": "{title} {number} · Page {page} sur {pages}", "continued": "{title} {number} (suite)",
    "credits": "Avoir sur la facture {number} du {date}", "reason": "Motif : {reason}",
    "fx": "TVA en {currency} au taux de {rate} ({source}, {date})", "fx_total": "Total TVA",
    "source_ecb": "BCE", "source_other": "taux du vendeur",
    "categories": "Catégories de TVA",
    "cat_S": "taux normal", "cat_Z": "taux zéro", "cat_E": "exonéré", "cat_AE": "autoliquidation",
    "cat_K": "livraison intracommunautaire", "cat_G": "exportation", "cat_O": "hors champ de la TVA",
}  # fmt: skip

_PL = {
    "invoice": "Faktura", "credit_note": "Faktura korygująca",
    "invoice_title": "FAKTURA", "credit_note_title": "FAKTURA KORYGUJĄCA",
    "invoice_no": "Nr faktury", "credit_note_no": "Nr korekty",
    "issue_date": "Data wystawienia", "period": "Okres", "due_date": "Termin płatności", "currency": "Waluta",
    "up_to": "do {date}", "bill_to": "NABYWCA", "amount_due": "DO ZAPŁATY", "amount_credited": "KWOTA KOREKTY",
    "due_on": "Termin {date}", "terms_receipt": "Płatne przy odbiorze", "terms_days": "Płatne w ciągu {days} dni",
    "vat_no": "NIP/VAT", "company_no": "Nr rejestrowy",
    "col_order": "Zamówienie", "col_dispatched": "Wysyłka", "col_sku": "Indeks", "col_description": "Opis",
    "col_qty": "Ilość", "col_cost": "Cena jedn.", "col_shipping": "Wysyłka jedn.", "col_unit": "Cena jedn. razem",
    "col_rate": "VAT %", "col_category": "Kat.", "col_net": "Netto {currency}",
    "net_total": "Razem netto", "vat_on": "VAT {rate} % ({category}) od {net}", "vat_total": "Razem VAT",
    "total_due": "Do zapłaty ({currency})", "total_credited": "Razem korekta ({currency})",
    "payment": "PŁATNOŚĆ", "bank_transfer": "Przelew na rzecz {name}", "iban": "IBAN", "bic": "BIC",
    "reference": "Tytuł przelewu", "refund": "Kwota zostanie zwrócona lub zaliczona na poczet otwartych faktur.",
    "page": "{title} {number} · Strona {page} z {pages}", "continued": "{title} {number} (ciąg dalszy)",
    "credits": "Koryguje fakturę {number} z dnia {date}", "reason": "Przyczyna: {reason}",
    "fx": "VAT w {currency} po kursie {rate} ({source}, {date})", "fx_total": "Razem VAT",
    "source_ecb": "EBC", "source_other": "kurs sprzedawcy",
    "categories": "Kategorie VAT",
    "cat_S": "stawka podstawowa", "cat_Z": "stawka 0 %", "cat_E": "zwolnione", "cat_AE": "odwrotne obciążenie",
    "cat_K": "wewnątrzwspólnotowa dostawa towarów", "cat_G": "eksport towarów", "cat_O": "niepodlegające VAT",
}  # fmt: skip

_ES = {
    "invoice": "Factura", "credit_note": "Factura rectificativa",
    "invoice_title": "FACTURA", "credit_note_title": "FACTURA RECTIFICATIVA",
    "invoice_no": "N.º de factura", "credit_note_no": "N.º de rectificativa",
    "issue_date": "Fecha de emisión", "period": "Período", "due_date": "Vencimiento", "currency": "Moneda",
    "up_to": "hasta el {date}", "bill_to": "FACTURAR A", "amount_due": "IMPORTE A PAGAR",
    "amount_credited": "IMPORTE ABONADO",
    "due_on": "Vence el {date}", "terms_receipt": "Pago a la recepción", "terms_days": "Pago en {days} días",
    "vat_no": "NIF-IVA", "company_no": "Registro mercantil",
    "col_order": "Pedido", "col_dispatched": "Envío", "col_sku": "Ref.", "col_description": "Descripción",
    "col_qty": "Cant.", "col_cost": "Precio unit.", "col_shipping": "Envío unit.", "col_unit": "Precio total unit.",
    "col_rate": "IVA %", "col_category": "Cat.", "col_net": "Neto {currency}",
    "net_total": "Base imponible", "vat_on": "IVA {rate} % ({category}) sobre {net}", "vat_total": "Total IVA",
    "total_due": "Total ({currency})", "total_credited": "Total abonado ({currency})",
    "payment": "PAGO", "bank_transfer": "Transferencia a {name}", "iban": "IBAN", "bic": "BIC",
    "reference": "Concepto", "refund": "El importe se reembolsa o se compensa con facturas pendientes.",
    "page": "{title} {number} · Página {page} de {pages}", "continued": "{title} {number} (continuación)",
    "credits": "Rectifica la factura {number} del {date}", "reason": "Motivo: {reason}",
    "fx": "IVA en {currency} al tipo {rate} ({source}, {date})", "fx_total": "Total IVA",
    "source_ecb": "BCE", "source_other": "tipo del vendedor",
    "categories": "Categorías de IVA",
    "cat_S": "tipo general", "cat_Z": "tipo cero", "cat_E": "exento", "cat_AE": "inversión del sujeto pasivo",
    "cat_K": "entrega intracomunitaria", "cat_G": "exportación", "cat_O": "no sujeto a IVA",
}  # fmt: skip

_IT = {
    "invoice": "Fattura", "credit_note": "Nota di credito",
    "invoice_title": "FATTURA", "credit_note_title": "NOTA DI CREDITO",
    "invoice_no": "Fattura n.", "credit_note_no": "Nota di credito n.",
    "issue_date": "Data di emissione", "period": "Periodo", "due_date": "Scadenza", "currency": "Valuta",
    "up_to": "fino al {date}", "bill_to": "INTESTATARIO", "amount_due": "IMPORTO DOVUTO",
    "amount_credited": "IMPORTO ACCREDITATO",
    "due_on": "Scadenza {date}", "terms_receipt": "Pagamento al ricevimento",
    "terms_days": "Pagamento entro {days} giorni",
    "vat_no": "Partita IVA", "company_no": "Registro imprese",
    "col_order": "Ordine", "col_dispatched": "Spedito", "col_sku": "Codice", "col_description": "Descrizione",
    "col_qty": "Qtà", "col_cost": "Prezzo unit.", "col_shipping": "Sped. unit.", "col_unit": "Prezzo unit. tot.",
    "col_rate": "IVA %", "col_category": "Cat.", "col_net": "Imponibile {currency}",
    "net_total": "Totale imponibile", "vat_on": "IVA {rate} % ({category}) su {net}", "vat_total": "Totale IVA",
    "total_due": "Totale dovuto ({currency})", "total_credited": "Totale accreditato ({currency})",
    "payment": "PAGAMENTO", "bank_transfer": "Bonifico a {name}", "iban": "IBAN", "bic": "BIC",
    "reference": "Causale", "refund": "L'importo viene rimborsato o compensato con fatture aperte.",
    "page": "{title} {number} · Pagina {page} di {pages}", "continued": "{title} {number} (segue)",
    "credits": "Storna la fattura {number} del {date}", "reason": "Motivo: {reason}",
    "fx": "IVA in {currency} al cambio {rate} ({source}, {date})", "fx_total": "Totale IVA",
    "source_ecb": "BCE", "source_other": "cambio del venditore",
    "categories": "Categorie IVA",
    "cat_S": "aliquota ordinaria", "cat_Z": "aliquota zero", "cat_E": "esente", "cat_AE": "inversione contabile",
    "cat_K": "cessione intracomunitaria", "cat_G": "esportazione", "cat_O": "fuori campo IVA",
}  # fmt: skip

_NL = {
    "invoice": "Factuur", "credit_note": "Creditnota",
    "invoice_title": "FACTUUR", "credit_note_title": "CREDITNOTA",
    "invoice_no": "Factuurnr.", "credit_note_no": "Creditnotanr.",
    "issue_date": "Factuurdatum", "period": "Periode", "due_date": "Vervaldatum", "currency": "Valuta",
    "up_to": "tot {date}", "bill_to": "FACTUUR AAN", "amount_due": "TE BETALEN", "amount_credited": "GECREDITEERD",
    "due_on": "Te betalen vóór {date}", "terms_receipt": "Betaling bij ontvangst",
    "terms_days": "Betaling binnen {days} dagen",
    "vat_no": "Btw-nr.", "company_no": "Handelsregisternr.",
    "col_order": "Order", "col_dispatched": "Verzonden", "col_sku": "Artikel", "col_description": "Omschrijving",
    "col_qty": "Aant.", "col_cost": "Stukprijs", "col_shipping": "Verzending p.st.", "col_unit": "Prijs p.st.",
    "col_rate": "Btw %", "col_category": "Cat.", "col_net": "Netto {currency}",
    "net_total": "Totaal excl. btw", "vat_on": "Btw {rate} % ({category}) over {net}", "vat_total": "Totaal btw",
    "total_due": "Te betalen ({currency})", "total_credited": "Totaal gecrediteerd ({currency})",
    "payment": "BETALING", "bank_transfer": "Overschrijving aan {name}", "iban": "IBAN", "bic": "BIC",
    "reference": "Kenmerk", "refund": "Het bedrag wordt terugbetaald of verrekend met openstaande facturen.",
    "page": "{title} {number} · Pagina {page} van {pages}", "continued": "{title} {number} (vervolg)",
    "credits": "Crediteert factuur {number} van {date}", "reason": "Reden: {reason}",
    "fx": "Btw in {currency} tegen koers {rate} ({source}, {date})", "fx_total": "Totaal btw",
    "source_ecb": "ECB", "source_other": "koers van de verkoper",
    "categories": "Btw-categorieën",
    "cat_S": "standaardtarief", "cat_Z": "nultarief", "cat_E": "vrijgesteld", "cat_AE": "btw verlegd",
    "cat_K": "intracommunautaire levering", "cat_G": "uitvoer", "cat_O": "buiten de werkingssfeer",
}  # fmt: skip

_TABLES: dict[str, Mapping[str, str]] = {"en": _EN, "de": _DE, "fr": _FR, "pl": _PL, "es": _ES, "it": _IT, "nl": _NL}


def labels_for(language: str) -> Mapping[str, str]:
    """The labels of ``language`` (ISO 639-1, any case); English for a language we lack."""
    return _TABLES.get(language.strip().lower(), _EN)


@lru_cache(maxsize=128)
def locale_for(language: str, country: str) -> str:
    """The babel locale for numbers and dates: ``language`` as written in ``country`` where it exists."""
    lang = language.strip().lower()
    if lang not in _HOME:
        lang = "en"
    candidate = f"{lang}_{country.strip().upper()}"
    try:
        Locale.parse(candidate)
    except (UnknownLocaleError, ValueError):
        return _HOME[lang]
    return candidate
