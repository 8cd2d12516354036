"""Credit notes: ``credit_note`` and ``credit_note_line`` (immutable), the tenant's credit-note sequence and prefix, a delivery's credit note, the ``credit_issued`` notice kind."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.notice import NoticeKind
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0013_vat_fx')]

    initial = False

    operations = [
        ops.CreateModel(
            name='CreditNote',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='credit_notes', on_delete=OnDelete.RESTRICT)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', db_constraint=True, to_field='id', related_name='credit_notes', on_delete=OnDelete.RESTRICT)),
                ('invoice', fields.ForeignKeyField('models.Invoice', source_field='invoice_id', db_constraint=True, to_field='id', related_name='credit_notes', on_delete=OnDelete.RESTRICT)),
                ('number', fields.IntField()),
                ('display_number', fields.CharField(max_length=40)),
                ('issued_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('currency', fields.CharField(max_length=3)),
                ('timezone', fields.CharField(max_length=64)),
                ('seller', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('buyer', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('net_total', fields.DecimalField(max_digits=16, decimal_places=4)),
                ('tax_total', fields.DecimalField(max_digits=16, decimal_places=4)),
                ('gross_total', fields.DecimalField(max_digits=16, decimal_places=4)),
                ('tax_breakdown', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('reason', fields.CharField(max_length=500)),
                ('reinvoice', fields.BooleanField(default=False, description='True when the credited orders were made eligible for invoicing again.')),
                ('actor', fields.CharField(default='', max_length=100)),
                ('request_key', fields.CharField(null=True, unique=True, max_length=120)),
            ],
            options={'table': 'credit_note', 'app': 'models', 'unique_together': (('tenant', 'number'),), 'indexes': [Index(fields=['tenant_id', 'display_number'])], 'pk_attr': 'id', 'table_description': "``number`` is the value of the tenant's credit-note sequence, ``display_number`` adds its prefix."},
            bases=['_Immutable'],
        ),
        ops.CreateModel(
            name='CreditNoteLine',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('credit_note', fields.ForeignKeyField('models.CreditNote', source_field='credit_note_id', db_index=True, db_constraint=True, to_field='id', related_name='lines', on_delete=OnDelete.RESTRICT)),
                ('invoice_line', fields.ForeignKeyField('models.InvoiceLine', source_field='invoice_line_id', db_index=True, db_constraint=True, to_field='id', related_name='credit_lines', on_delete=OnDelete.RESTRICT)),
                ('position', fields.IntField()),
                ('invoice_position', fields.IntField()),
                ('order_id_ref', fields.IntField()),
                ('order_ref', fields.CharField(max_length=64)),
                ('dispatched_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('sku', fields.CharField(max_length=64)),
                ('description', fields.CharField(max_length=300)),
                ('quantity', fields.IntField()),
                ('unit_cost', fields.DecimalField(max_digits=14, decimal_places=4)),
                ('unit_shipping', fields.DecimalField(max_digits=14, decimal_places=4)),
                ('tax_rate', fields.DecimalField(max_digits=7, decimal_places=3)),
                ('vat_category', fields.CharField(default='S', max_length=2)),
                ('net', fields.DecimalField(max_digits=16, decimal_places=4)),
            ],
            options={'table': 'credit_note_line', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One credited (part of an) invoice line: ``quantity`` units of it, for ``net``.'},
            bases=['_Immutable'],
        ),
        ops.AddField(
            model_name='Delivery',
            name='credit_note',
            field=fields.ForeignKeyField('models.CreditNote', source_field='credit_note_id', null=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.RESTRICT),
        ),
        ops.AlterField(
            model_name='SlackNotice',
            name='kind',
            field=fields.CharEnumField(description='RUN_ISSUED: run_issued\nRUN_REFUSED: run_refused\nRUN_FAILED: run_failed\nDELIVERY_FAILED: delivery_failed\nAPPROVAL_REQUESTED: approval_requested\nAPPROVAL_REMINDER: approval_reminder\nAPPROVAL_TIMED_OUT: approval_timed_out\nCREDIT_ISSUED: credit_issued', enum_type=NoticeKind, max_length=20),
        ),
        ops.AddField(
            model_name='Tenant',
            name='credit_note_prefix',
            field=fields.CharField(default='CN-', db_default='CN-', max_length=20),
        ),
        ops.AddField(
            model_name='Tenant',
            name='last_credit_note_number',
            field=fields.IntField(default=0, db_default=0),
        ),
    ]
