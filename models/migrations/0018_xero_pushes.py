"""Xero pushes (issue 16): ``xero_push`` (the Xero outbox) and ``xero_contact``; the ``xero`` integration kind (a
disabled row for every existing company, as new companies get one) and the push notice kinds."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.integration import IntegrationKind
from models.notice import NoticeKind
from models.xero_push import XeroPushKind, XeroPushStatus
from tortoise.fields.base import OnDelete
from tortoise import fields


class AlterDescription(ops.AlterField):
    """Only the field's description (its enum's member list) changes: the state moves on, no SQL runs
    (on SQLite a real ``AlterField`` rebuilds ``integration``, which rows of other tables reference)."""

    async def database_forward(self, *args, **kwargs) -> None:
        return None

    async def database_backward(self, *args, **kwargs) -> None:
        return None


async def add_xero_rows(apps, schema_editor) -> None:
    """Every company has one row per kind (``Integration``): give existing companies their Xero row."""
    conn = schema_editor.client
    postgres = conn.capabilities.dialect == "postgres"
    false = "FALSE" if postgres else "0"
    now = "CURRENT_TIMESTAMP" if postgres else "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"
    await conn.execute_script(
        "INSERT INTO integration (company_id, kind, enabled, include_errors, schedule, settings, updated_at) "
        f"SELECT c.id, 'xero', {false}, {false}, 'weekly', '{{}}', {now} FROM company c "
        "WHERE NOT EXISTS (SELECT 1 FROM integration i WHERE i.company_id = c.id AND i.kind = 'xero') "
        "ORDER BY c.id")

class Migration(migrations.Migration):
    dependencies = [('models', '0017_xero')]

    initial = False

    operations = [
        ops.CreateModel(
            name='XeroContact',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('connection', fields.ForeignKeyField('models.XeroConnection', source_field='connection_id', db_constraint=True, to_field='id', related_name='contacts', on_delete=OnDelete.CASCADE)),
                ('xero_tenant_id', fields.CharField(max_length=64)),
                ('contact_number', fields.CharField(max_length=50)),
                ('contact_id', fields.CharField(max_length=64)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'xero_contact', 'app': 'models', 'unique_together': (('connection', 'xero_tenant_id', 'contact_number'),), 'pk_attr': 'id', 'table_description': "A contact we wrote to one organisation: its ``ContactNumber`` (our short name), Xero's id, and the"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='XeroPush',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='xero_pushes', on_delete=OnDelete.RESTRICT)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', db_constraint=True, to_field='id', related_name='xero_pushes', on_delete=OnDelete.RESTRICT)),
                ('kind', fields.CharEnumField(description='INVOICE: invoice\nCREDIT_NOTE: credit_note\nPURCHASE_ORDER: purchase_order', enum_type=XeroPushKind, max_length=20)),
                ('invoice', fields.ForeignKeyField('models.Invoice', source_field='invoice_id', null=True, db_constraint=True, to_field='id', related_name='xero_pushes', on_delete=OnDelete.RESTRICT)),
                ('credit_note', fields.ForeignKeyField('models.CreditNote', source_field='credit_note_id', null=True, db_constraint=True, to_field='id', related_name='xero_pushes', on_delete=OnDelete.RESTRICT)),
                ('dedupe_key', fields.CharField(unique=True, max_length=120)),
                ('number', fields.CharField(max_length=40)),
                ('status', fields.CharEnumField(default=XeroPushStatus.PENDING, db_index=True, description='PENDING: pending\nSENDING: sending\nDONE: done\nFAILED: failed', enum_type=XeroPushStatus, max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('lease_owner', fields.CharField(null=True, max_length=64)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('connection', fields.ForeignKeyField('models.XeroConnection', source_field='connection_id', null=True, db_constraint=True, to_field='id', related_name='pushes', on_delete=OnDelete.RESTRICT)),
                ('payload', fields.TextField(default='', unique=False)),
                ('batch_key', fields.CharField(null=True, max_length=64)),
                ('xero_id', fields.CharField(default='', max_length=64)),
                ('xero_totals', fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('mismatch', fields.CharField(default='', max_length=500)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('done_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'xero_push', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One document to create in Xero, with what Xero answered.'},
            bases=['Model'],
        ),
        AlterDescription(
            model_name='Integration',
            name='kind',
            field=fields.CharEnumField(description='PDF_EMAILER: pdf_emailer\nXML_EXPORT: xml_export\nXERO: xero', enum_type=IntegrationKind, max_length=20),
        ),
        AlterDescription(
            model_name='SlackNotice',
            name='kind',
            field=fields.CharEnumField(description='RUN_ISSUED: run_issued\nRUN_REFUSED: run_refused\nRUN_FAILED: run_failed\nDELIVERY_FAILED: delivery_failed\nAPPROVAL_REQUESTED: approval_requested\nAPPROVAL_REMINDER: approval_reminder\nAPPROVAL_TIMED_OUT: approval_timed_out\nCREDIT_ISSUED: credit_issued\nXML_EXPORTED: xml_exported\nXML_FAILING: xml_failing\nXML_RECOVERED: xml_recovered\nXML_BLOCKED: xml_blocked\nXERO_BROKEN: xero_broken\nXERO_BUDGET: xero_budget\nXERO_PUSH_FAILED: xero_push_failed\nXERO_MISMATCH: xero_mismatch\nXERO_WAITING: xero_waiting', enum_type=NoticeKind, max_length=20),
        ),
        ops.RunPython(add_xero_rows),
    ]
