"""``delivery.dedupe_key``: a resend queued by a button is queued once, whoever clicks and however often."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0010_slack_retry_keys')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Delivery',
            name='dedupe_key',
            field=fields.CharField(null=True, unique=True, max_length=120),
        ),
    ]
