"""Xero (issue 16): ``xero_app``, ``xero_connection``, ``xero_auth_state``; the ``xero_broken`` and ``xero_budget`` notice kinds."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from models.notice import NoticeKind
from models.xero import XeroAuthPurpose, XeroConnectionStatus
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0016_xml_export')]

    initial = False

    operations = [
        ops.CreateModel(
            name='XeroApp',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.OneToOneField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='xero_app', on_delete=OnDelete.CASCADE)),
                ('client_id', fields.CharField(max_length=64)),
                ('client_secret', fields.TextField(unique=False)),
                ('legacy_scopes', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('created_by', fields.CharField(default='', max_length=100)),
            ],
            options={'table': 'xero_app', 'app': 'models', 'pk_attr': 'id', 'table_description': "The tenant's own Xero app (each client creates one at developer.xero.com): one per tenant."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='XeroAuthState',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('state_hash', fields.CharField(unique=True, max_length=64)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='xero_auth_states', on_delete=OnDelete.CASCADE)),
                ('user_id', fields.CharField(max_length=32)),
                ('purpose', fields.CharEnumField(description='RETAILER: retailer\nCOMPANY: company', enum_type=XeroAuthPurpose, max_length=10)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', null=True, db_constraint=True, to_field='id', related_name='xero_auth_states', on_delete=OnDelete.CASCADE)),
                ('channel', fields.CharField(default='', max_length=80)),
                ('code_verifier', fields.TextField(unique=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('pending_tokens', fields.TextField(default='', unique=False)),
                ('pending_organisations', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('pending_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('chosen_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'xero_auth_state', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One authorisation in flight: the ``state`` sent to Xero (only its sha256 is stored), bound to the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='XeroConnection',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='xero_connections', on_delete=OnDelete.CASCADE)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', null=True, db_constraint=True, to_field='id', related_name='xero_connections', on_delete=OnDelete.CASCADE)),
                ('xero_tenant_id', fields.CharField(max_length=64)),
                ('xero_connection_id', fields.CharField(max_length=64)),
                ('organisation_name', fields.CharField(default='', max_length=255)),
                ('scopes', fields.TextField(default='', unique=False)),
                ('access_token', fields.TextField(default='', unique=False)),
                ('refresh_token', fields.TextField(default='', unique=False)),
                ('access_expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('refreshed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('status', fields.CharEnumField(default=XeroConnectionStatus.CONNECTED, description='CONNECTED: connected\nBROKEN: broken\nREVOKED: revoked', enum_type=XeroConnectionStatus, max_length=10)),
                ('broken_reason', fields.CharField(default='', max_length=500)),
                ('notice_channel', fields.CharField(default='', max_length=80)),
                ('calls_day', fields.DateField(null=True)),
                ('calls_today', fields.IntField(default=0)),
                ('daily_limit', fields.IntField(default=5000)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('created_by', fields.CharField(default='', max_length=100)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'xero_connection', 'app': 'models', 'pk_attr': 'id', 'table_description': "One Xero organisation connected to a tenant: the tenant's own (``company`` null) or a dropship"},
            bases=['Model'],
        ),
        ops.AlterField(
            model_name='SlackNotice',
            name='kind',
            field=fields.CharEnumField(description='RUN_ISSUED: run_issued\nRUN_REFUSED: run_refused\nRUN_FAILED: run_failed\nDELIVERY_FAILED: delivery_failed\nAPPROVAL_REQUESTED: approval_requested\nAPPROVAL_REMINDER: approval_reminder\nAPPROVAL_TIMED_OUT: approval_timed_out\nCREDIT_ISSUED: credit_issued\nXML_EXPORTED: xml_exported\nXML_FAILING: xml_failing\nXML_RECOVERED: xml_recovered\nXML_BLOCKED: xml_blocked\nXERO_BROKEN: xero_broken\nXERO_BUDGET: xero_budget', enum_type=NoticeKind, max_length=20),
        ),
    ]
