"""Which handler answers which button: ``ib:<name>`` → handler (like ``dispatch.COMMANDS``)."""

from __future__ import annotations

from commands import approvals, credit, credit_form, delivery_buttons, home, invoice_buttons, xero, xml
from commands.clicks import ClickHandler
from commands.dispatch import dispatch
from commands.notifications import CREDIT_OPEN
from commands.paging import PAGE_ACTION, page_handler

CLICKS: dict[str, ClickHandler] = {
    PAGE_ACTION: page_handler(dispatch),
    **invoice_buttons.HANDLERS,
    **delivery_buttons.HANDLERS,
    approvals.APPROVE: approvals.approve_click,
    approvals.SKIP: approvals.skip_click,
    credit.CONFIRM: credit.confirm_click,
    CREDIT_OPEN: credit_form.open_form,  # the button is drawn with the run notice
    home.NEXT_PAGE: home.home_page,
    home.PREVIOUS_PAGE: home.home_page,
    **xml.CLICKS,
    xero.CHOOSE: xero.choose_click,
    xero.DISCONNECT: xero.disconnect_click,
}
