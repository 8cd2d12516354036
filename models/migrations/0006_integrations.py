"""Integrations as a concept: today's PDF Emailer rows become ``integration`` rows of kind ``pdf_emailer``.

Every setting, schedule, pending run and lease moves with no loss (the BCC list into
``settings``); runs recorded so far are linked to their company's PDF Emailer.
"""

import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from models.integration import IntegrationKind

_COLUMNS = ("company_id", "enabled", "include_errors", "starting_from", "schedule", "next_run_at",
            "last_cutoff_at", "lease_owner", "lease_until", "updated_at")


async def move_emailer_rows(apps, schema_editor) -> None:
    """Copy ``emailer_integration`` into ``integration``; link existing runs to the new rows."""
    conn = schema_editor.client
    postgres = conn.capabilities.dialect == "postgres"
    _, rows = await conn.execute_query(f"SELECT {', '.join(_COLUMNS)}, bcc FROM emailer_integration ORDER BY id")
    if rows:
        width = len(_COLUMNS) + 3
        marks = [f"${i}" if postgres else "?" for i in range(1, width + 1)]
        insert = (f"INSERT INTO integration ({', '.join(_COLUMNS)}, kind, settings, id) "
                  f"VALUES ({', '.join(marks)})")
        values = []
        for number, row in enumerate(rows, start=1):
            row = tuple(row)
            bcc = row[-1]
            if isinstance(bcc, (bytes, bytearray)):
                bcc = bcc.decode()
            bcc = loads(bcc) if isinstance(bcc, str) else (bcc or [])
            values.append([*row[:-1], "pdf_emailer", dumps({"bcc": list(bcc)}, separators=(",", ":")), number])
        await conn.execute_many(insert, values)
        if postgres:
            await conn.execute_script(
                "SELECT setval(pg_get_serial_sequence('integration', 'id'), (SELECT MAX(id) FROM integration))")
    await conn.execute_script(
        "UPDATE invoice_run SET integration_id = (SELECT i.id FROM integration i "
        "WHERE i.company_id = invoice_run.company_id AND i.kind = 'pdf_emailer')")


class Migration(migrations.Migration):
    dependencies = [('models', '0005_auto_20261125_1236')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Integration',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('company', fields.ForeignKeyField('models.Company', source_field='company_id', db_constraint=True, to_field='id', related_name='integrations', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='PDF_EMAILER: pdf_emailer', enum_type=IntegrationKind, max_length=20)),
                ('enabled', fields.BooleanField(default=False)),
                ('include_errors', fields.BooleanField(default=False)),
                ('starting_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('schedule', fields.CharField(default='weekly', max_length=100)),
                ('next_run_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('last_cutoff_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('lease_owner', fields.CharField(null=True, max_length=64)),
                ('lease_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('settings', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'integration', 'app': 'models', 'unique_together': (('company', 'kind'),), 'pk_attr': 'id', 'table_description': 'Settings and scheduler state of one integration of one company.'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='InvoiceRun',
            options={'table': 'invoice_run', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Run record of the PDF Emailer: one per run, whatever its outcome.'},
        ),
        ops.AddField(
            model_name='InvoiceRun',
            name='integration',
            field=fields.ForeignKeyField('models.Integration', source_field='integration_id', null=True, db_constraint=True, to_field='id', related_name='invoice_runs', on_delete=OnDelete.RESTRICT),
        ),
        ops.RunPython(move_emailer_rows),
        ops.DeleteModel(name='EmailerIntegration'),
    ]
