"""SSH keys: ``ssh_key``, one Ed25519 key pair per tenant (private half sealed), for SFTP destinations."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_credit_notes')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SshKey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('tenant', fields.OneToOneField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id', related_name='ssh_key', on_delete=OnDelete.CASCADE)),
                ('algorithm', fields.CharField(default='ssh-ed25519', max_length=32)),
                ('public_line', fields.CharField(max_length=400)),
                ('fingerprint', fields.CharField(max_length=80)),
                ('private_sealed', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('rotated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'ssh_key', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One Ed25519 key pair per tenant (``tenant`` is unique: a concurrent second creator fails and reads this row).'},
            bases=['Model'],
        ),
    ]
