from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0002_auto_20261125_1148')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Order',
            name='source_updated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
