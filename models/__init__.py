"""What is stored: Tortoise ORM models, one module per aggregate.

This package imports nothing else of InvoiceBot's; every other layer imports it.
The Tortoise app label is ``models`` and its migrations live in
``models/migrations`` (generated with ``tortoise makemigrations``).
"""

from models.accounting import ACCOUNTING_KEYS, AccountingFields
from models.approval import ApprovalState, OnTimeout, RunApproval
from models.audit import AuditEntry
from models.catalog import Price, Product
from models.company import Company
from models.credit_note import CreditNote, CreditNoteLine
from models.delivery import Delivery, DeliveryKind, DeliveryStatus
from models.fx import FxRate, FxSource
from models.integration import Integration, IntegrationKind
from models.invoice import Invoice, InvoiceLine
from models.notice import NoticeKind, NoticeStatus, SlackNotice
from models.order import Order, OrderItem, OrderStatus
from models.run import InvoiceRun, RunOutcome, RunTrigger
from models.seen_request import SeenRequest
from models.ssh_key import SshKey
from models.tenant import Plan, Tenant
from models.token import ApiToken
from models.xero import XeroApp, XeroAuthPurpose, XeroAuthState, XeroConnection, XeroConnectionStatus
from models.xero_push import XeroContact, XeroPush, XeroPushKind, XeroPushStatus
from models.xml_export import XmlContent, XmlExport, XmlExportItem, XmlExportStatus

MODEL_MODULES = [
    "models.tenant",
    "models.company",
    "models.catalog",
    "models.order",
    "models.integration",
    "models.invoice",
    "models.credit_note",
    "models.run",
    "models.delivery",
    "models.audit",
    "models.notice",
    "models.approval",
    "models.token",
    "models.seen_request",
    "models.fx",
    "models.ssh_key",
    "models.xml_export",
    "models.xero",
    "models.xero_push",
]

__all__ = [
    "ApiToken",
    "ACCOUNTING_KEYS",
    "AccountingFields",
    "ApprovalState",
    "AuditEntry",
    "Company",
    "CreditNote",
    "CreditNoteLine",
    "Delivery",
    "DeliveryKind",
    "DeliveryStatus",
    "FxRate",
    "FxSource",
    "Integration",
    "IntegrationKind",
    "Invoice",
    "InvoiceLine",
    "InvoiceRun",
    "MODEL_MODULES",
    "NoticeKind",
    "NoticeStatus",
    "OnTimeout",
    "Order",
    "OrderItem",
    "OrderStatus",
    "Plan",
    "Price",
    "Product",
    "RunApproval",
    "RunOutcome",
    "RunTrigger",
    "SeenRequest",
    "SlackNotice",
    "SshKey",
    "Tenant",
    "XmlContent",
    "XmlExport",
    "XmlExportItem",
    "XmlExportStatus",
    "XeroApp",
    "XeroAuthPurpose",
    "XeroAuthState",
    "XeroConnection",
    "XeroConnectionStatus",
    "XeroContact",
    "XeroPush",
    "XeroPushKind",
    "XeroPushStatus",
]
