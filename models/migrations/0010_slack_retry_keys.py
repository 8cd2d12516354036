"""Retries processed once: ``slack_request_seen`` also keeps stable request ids, until ``retain_until``."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_slack_notices')]

    initial = False

    operations = [
        ops.AddField(
            model_name='SeenRequest',
            name='retain_until',
            field=fields.BigIntField(null=True, db_index=True),
        ),
    ]
