from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0004_auto_20261125_1149')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Invoice',
            index=Index(fields=['tenant_id', 'display_number']),
        ),
        ops.AlterField(
            model_name='InvoiceLine',
            name='invoice',
            field=fields.ForeignKeyField('models.Invoice', source_field='invoice_id', db_index=True, db_constraint=True, to_field='id', related_name='lines', on_delete=OnDelete.RESTRICT),
        ),
        ops.AlterField(
            model_name='OrderItem',
            name='order',
            field=fields.ForeignKeyField('models.Order', source_field='order_id', db_index=True, db_constraint=True, to_field='id', related_name='items', on_delete=OnDelete.CASCADE),
        ),
    ]
