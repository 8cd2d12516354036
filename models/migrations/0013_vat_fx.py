"""Issue 14 (legal content): VAT category per price and invoice line, invoice language/notes/FX snapshot, company language, tenant FX rates."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.fx import FxSource
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0012_approvals')]

    initial = False

    operations = [
        ops.CreateModel(
            name='FxRate',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='fx_rates', on_delete=OnDelete.CASCADE)),
                ('base', fields.CharField(max_length=3)),
                ('quote', fields.CharField(max_length=3)),
                ('day', fields.DateField()),
                ('rate', fields.DecimalField(max_digits=20, decimal_places=10)),
                ('source', fields.CharEnumField(description='OPS: ops\nFEED: feed\nECB: ecb', enum_type=FxSource, max_length=4)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'fx_rate', 'app': 'models', 'unique_together': (('tenant', 'base', 'quote', 'day'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Company',
            name='language',
            field=fields.CharField(default='', db_default='', max_length=2),
        ),
        ops.AddField(
            model_name='Invoice',
            name='fx',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='Invoice',
            name='language',
            field=fields.CharField(default='en', db_default='en', max_length=2),
        ),
        ops.AddField(
            model_name='Invoice',
            name='notes',
            field=fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='InvoiceLine',
            name='vat_category',
            field=fields.CharField(default='', db_default='', max_length=2),
        ),
        ops.AddField(
            model_name='Price',
            name='vat_category',
            field=fields.CharField(default='', db_default='', max_length=2),
        ),
        ops.AddField(
            model_name='Price',
            name='vat_exemption_code',
            field=fields.CharField(default='', db_default='', max_length=30),
        ),
    ]
