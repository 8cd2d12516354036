"""Replay refusal: the table of validly signed Slack requests already executed (``slack_request_seen``)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0006_integrations')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SeenRequest',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('signature', fields.CharField(unique=True, max_length=128)),
                ('timestamp', fields.BigIntField(db_index=True)),
                ('seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'slack_request_seen', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Validly signed Slack requests already executed (replay refusal).'},
            bases=['Model'],
        ),
    ]
