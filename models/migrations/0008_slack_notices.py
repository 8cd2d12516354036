"""The Slack notice outbox: ``slack_notice`` rows, written with what they announce and posted after commit."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.notice import NoticeKind, NoticeStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_slack_replays')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SlackNotice',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='notices', on_delete=OnDelete.RESTRICT)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', null=True, db_constraint=True, to_field='id', related_name='notices', on_delete=OnDelete.SET_NULL)),
                ('channel', fields.CharField(max_length=80)),
                ('channel_id', fields.CharField(default='', max_length=20)),
                ('kind', fields.CharEnumField(description='RUN_ISSUED: run_issued\nRUN_REFUSED: run_refused\nRUN_FAILED: run_failed\nDELIVERY_FAILED: delivery_failed', enum_type=NoticeKind, max_length=20)),
                ('payload', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('dedupe_key', fields.CharField(unique=True, max_length=120)),
                ('status', fields.CharEnumField(default=NoticeStatus.PENDING, description='PENDING: pending\nSENDING: sending\nSENT: sent\nFAILED: failed', enum_type=NoticeStatus, max_length=10)),
                ('attempts', fields.IntField(default=0)),
                ('outcome_unknown', fields.BooleanField(default=False)),
                ('next_attempt_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('message_ts', fields.CharField(default='', max_length=32)),
            ],
            options={'table': 'slack_notice', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Written in the transaction of what it announces and posted only after that commits.'},
            bases=['Model'],
        ),
    ]
