"""``einvoice=auto|facturx|none``: what each choice sends, how ops type it, and how a run reports a refusal."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from commands.notifications import run_reply
from invoicing.billing.runs import RunReport
from invoicing.delivery.einvoice.choice import describe, parse_choice, run_note, stored_choice, wants_facturx
from invoicing.delivery.notices import report_from_payload, report_payload
from invoicing.errors import InvalidInput
from models import RunOutcome


@pytest.mark.parametrize(("choice", "country", "facturx"), [
    ("auto", "DE", True), ("auto", "fr", True), ("auto", "GB", False), ("auto", "US", False),
    ("facturx", "US", True), ("none", "DE", False),
])
def test_auto_means_factur_x_for_eu_buyers_and_the_others_say_what_they_mean(choice, country, facturx):
    assert wants_facturx(choice, country) is facturx


def test_ops_may_type_any_case_and_factur_x_with_a_hyphen_but_nothing_else():
    assert parse_choice("Factur-X") == "facturx" and parse_choice(" NONE ") == "none"
    with pytest.raises(InvalidInput) as refused:
        parse_choice("ubl")
    assert refused.value.field == "einvoice" and "auto, facturx, none" in refused.value.reason


def test_a_company_that_never_chose_is_auto():
    assert stored_choice({}) == "auto" and stored_choice({"einvoice": "bogus"}) == "auto"
    assert stored_choice({"einvoice": "none", "bcc": []}) == "none"
    assert describe("auto", "GB") == "plain PDF: auto, Factur-X for EU buyers"


def test_the_run_note_names_the_reason_only_when_factur_x_was_wanted():
    assert run_note({"einvoice": "facturx"}, "BH", "BHD").startswith("No e-invoice: EN 16931 allows at most 2")
    assert run_note({}, "BH", "BHD") == ""  # auto: a Bahraini buyer gets the plain PDF anyway
    assert run_note({"einvoice": "facturx"}, "DE", "EUR") == ""


def test_the_channel_notice_of_the_run_carries_the_note():
    report = RunReport(tenant="ink", company="gulf", outcome=RunOutcome.INVOICED, dry_run=False,
                       cutoff=datetime(2026, 12, 2, tzinfo=UTC), period_start=None, currency="BHD",
                       invoice_number="INK-000007", run_id=3, orders_invoiced=1, lines=1, gross=Decimal("1.750"),
                       message=run_note({"einvoice": "facturx"}, "BH", "BHD"))
    notice = report_from_payload(report_payload(report, timezone="Asia/Bahrain"))
    assert notice.message == report.message
    assert "No e-invoice: EN 16931 allows at most 2 decimals and BHD has 3" in str(run_reply(notice).blocks)
