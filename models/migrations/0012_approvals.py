"""Approval mode: ``run_approval`` rows (a prepared scheduled run awaiting a decision), the emailer's approval columns, new run outcomes and notice kinds."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.approval import ApprovalState, OnTimeout
from models.notice import NoticeKind
from models.run import RunOutcome, RunTrigger
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0011_delivery_dedupe')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RunApproval',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='approvals', on_delete=OnDelete.RESTRICT)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', db_constraint=True, to_field='id', related_name='approvals', on_delete=OnDelete.CASCADE)),
                ('integration', fields.ForeignKeyField('models.Integration', source_field='integration_id', db_constraint=True, to_field='id', related_name='approvals', on_delete=OnDelete.CASCADE)),
                ('slot', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('cutoff', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('trigger', fields.CharEnumField(description='MANUAL: manual\nSCHEDULE: schedule\nCATCH_UP: catch_up', enum_type=RunTrigger, max_length=10)),
                ('state', fields.CharEnumField(default=ApprovalState.PENDING, db_index=True, description='PENDING: pending\nAPPROVED: approved\nSKIPPED: skipped\nEXPIRED: expired\nSUPERSEDED: superseded', enum_type=ApprovalState, max_length=10)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('currency', fields.CharField(max_length=3)),
                ('period_start', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('orders', fields.IntField(default=0)),
                ('lines', fields.IntField(default=0)),
                ('net_total', fields.DecimalField(max_digits=16, decimal_places=4)),
                ('tax_total', fields.DecimalField(max_digits=16, decimal_places=4)),
                ('gross_total', fields.DecimalField(max_digits=16, decimal_places=4)),
                ('skipped', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('skipped_by_reason', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('on_timeout', fields.CharEnumField(description='ISSUE: issue\nSKIP: skip', enum_type=OnTimeout, max_length=10)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('remind_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reminded_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.CharField(default='', max_length=100)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('channel_id', fields.CharField(default='', max_length=20)),
                ('message_ts', fields.CharField(default='', max_length=32)),
                ('superseded_by', fields.IntField(null=True)),
                ('run', fields.ForeignKeyField('models.InvoiceRun', source_field='run_id', null=True, db_constraint=True, to_field='id', related_name='approvals', on_delete=OnDelete.SET_NULL)),
                ('invoice', fields.ForeignKeyField('models.Invoice', source_field='invoice_id', null=True, db_constraint=True, to_field='id', related_name='approvals', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'run_approval', 'app': 'models', 'pk_attr': 'id', 'table_description': "One prepared invoice of one integration's scheduled slot, and what became of it."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Integration',
            name='approval',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddField(
            model_name='Integration',
            name='approval_on_timeout',
            field=fields.CharField(default='skip', db_default='skip', max_length=10),
        ),
        ops.AddField(
            model_name='Integration',
            name='approval_timeout',
            field=fields.IntField(default=86400, db_default=86400),
        ),
        ops.AlterField(
            model_name='InvoiceRun',
            name='outcome',
            field=fields.CharEnumField(description='INVOICED: invoiced\nNO_ORDERS: no_orders\nREFUSED: refused\nFAILED: failed\nSKIPPED: skipped\nPREPARED: prepared', enum_type=RunOutcome, max_length=10),
        ),
        ops.AlterField(
            model_name='SlackNotice',
            name='kind',
            field=fields.CharEnumField(description='RUN_ISSUED: run_issued\nRUN_REFUSED: run_refused\nRUN_FAILED: run_failed\nDELIVERY_FAILED: delivery_failed\nAPPROVAL_REQUESTED: approval_requested\nAPPROVAL_REMINDER: approval_reminder\nAPPROVAL_TIMED_OUT: approval_timed_out', enum_type=NoticeKind, max_length=20),
        ),
    ]
