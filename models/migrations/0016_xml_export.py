"""The XML export: ``xml_export`` (one file = one upload outbox row) and ``xml_export_item`` (the ledger), the
``xml_export`` integration kind (a disabled row for every existing company, as new companies get one), the
``exported`` run outcome and the XML export notice kinds."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.integration import IntegrationKind
from models.notice import NoticeKind
from models.run import RunOutcome
from models.xml_export import XmlContent, XmlExportStatus
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class AlterDescription(ops.AlterField):
    """Only the field's description (its enum's member list) changes: the state moves on, no SQL runs.

    On SQLite a real ``AlterField`` rebuilds the table, which its foreign keys refuse while other rows
    reference it (``invoice_run`` → ``integration``).
    """

    async def database_forward(self, *args, **kwargs) -> None:
        return None

    async def database_backward(self, *args, **kwargs) -> None:
        return None


async def add_xml_export_rows(apps, schema_editor) -> None:
    """Every company has one row per kind (``Integration``): give existing companies their XML export row."""
    conn = schema_editor.client
    postgres = conn.capabilities.dialect == "postgres"
    false = "FALSE" if postgres else "0"
    now = "CURRENT_TIMESTAMP" if postgres else "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')"
    await conn.execute_script(
        "INSERT INTO integration (company_id, kind, enabled, include_errors, schedule, settings, updated_at) "
        f"SELECT c.id, 'xml_export', {false}, {false}, 'weekly', '{{}}', {now} FROM company c "
        "WHERE NOT EXISTS (SELECT 1 FROM integration i WHERE i.company_id = c.id AND i.kind = 'xml_export') "
        "ORDER BY c.id")


class Migration(migrations.Migration):
    dependencies = [('models', '0015_ssh_keys')]

    initial = False

    operations = [
        ops.CreateModel(
            name='XmlExport',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='xml_exports', on_delete=OnDelete.RESTRICT)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', db_constraint=True, to_field='id', related_name='xml_exports', on_delete=OnDelete.RESTRICT)),
                ('integration', fields.ForeignKeyField('models.Integration', source_field='integration_id', db_constraint=True, to_field='id', related_name='xml_exports', on_delete=OnDelete.RESTRICT)),
                ('sequence', fields.IntField()),
                ('file_name', fields.CharField(max_length=220)),
                ('content', fields.CharEnumField(default=XmlContent.ORDERS, description='ORDERS: orders\nINVOICES: invoices', enum_type=XmlContent, max_length=10)),
                ('status', fields.CharEnumField(default=XmlExportStatus.PENDING, db_index=True, description='PENDING: pending\nSENDING: sending\nSENT: sent\nFAILED: failed', enum_type=XmlExportStatus, max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('next_attempt_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('error_kind', fields.CharField(default='', max_length=20)),
                ('location', fields.CharField(default='', max_length=600)),
                ('size', fields.BigIntField(default=0)),
                ('sha256', fields.CharField(max_length=64)),
                ('body', fields.BinaryField()),
                ('order_count', fields.IntField(default=0)),
                ('skipped', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('cutoff', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('invoice', fields.ForeignKeyField('models.Invoice', source_field='invoice_id', null=True, db_constraint=True, to_field='id', related_name='xml_exports', on_delete=OnDelete.RESTRICT)),
                ('credit_note', fields.ForeignKeyField('models.CreditNote', source_field='credit_note_id', null=True, db_constraint=True, to_field='id', related_name='xml_exports', on_delete=OnDelete.RESTRICT)),
            ],
            options={'table': 'xml_export', 'app': 'models', 'unique_together': (('company', 'sequence'),), 'pk_attr': 'id', 'table_description': 'One exported file of one company, and its place in the upload outbox.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='XmlExportItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('export', fields.ForeignKeyField('models.XmlExport', source_field='export_id', db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.RESTRICT)),
                ('order', fields.ForeignKeyField('models.Order', source_field='order_id', db_constraint=True, to_field='id', related_name='xml_exports', on_delete=OnDelete.RESTRICT)),
                ('revision', fields.IntField(default=0)),
                ('fingerprint', fields.CharField(max_length=64)),
            ],
            options={'table': 'xml_export_item', 'app': 'models', 'unique_together': (('export', 'order'),), 'indexes': [Index(fields=['order_id', 'id'])], 'pk_attr': 'id', 'table_description': "The ledger: order ``order`` went into ``export`` as ``revision``, with this record's fingerprint."},
            bases=['Model'],
        ),
        AlterDescription(
            model_name='Integration',
            name='kind',
            field=fields.CharEnumField(description='PDF_EMAILER: pdf_emailer\nXML_EXPORT: xml_export', enum_type=IntegrationKind, max_length=20),
        ),
        AlterDescription(
            model_name='InvoiceRun',
            name='outcome',
            field=fields.CharEnumField(description='INVOICED: invoiced\nNO_ORDERS: no_orders\nREFUSED: refused\nFAILED: failed\nSKIPPED: skipped\nPREPARED: prepared\nEXPORTED: exported', enum_type=RunOutcome, max_length=10),
        ),
        AlterDescription(
            model_name='SlackNotice',
            name='kind',
            field=fields.CharEnumField(description='RUN_ISSUED: run_issued\nRUN_REFUSED: run_refused\nRUN_FAILED: run_failed\nDELIVERY_FAILED: delivery_failed\nAPPROVAL_REQUESTED: approval_requested\nAPPROVAL_REMINDER: approval_reminder\nAPPROVAL_TIMED_OUT: approval_timed_out\nCREDIT_ISSUED: credit_issued\nXML_EXPORTED: xml_exported\nXML_FAILING: xml_failing\nXML_RECOVERED: xml_recovered\nXML_BLOCKED: xml_blocked', enum_type=NoticeKind, max_length=20),
        ),
        ops.RunPython(add_xml_export_rows),
    ]
