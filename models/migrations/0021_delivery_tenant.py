"""``delivery.tenant_id`` (issue 17's burst): ``/invoicing deliveries`` reads one tenant's open e-mails by one index.

The list joined delivery to invoice to find the tenant's rows, and the plan of that join depended on statistics. A
table growing from empty during a burst has none, and PostgreSQL then joined every open e-mail to every invoice of
the tenant (and to its company) before taking the 20 newest: 30 ms a command, PostgreSQL's largest cost in the burst.
With the tenant on the row, the page is the newest entries of the partial index ``delivery_open`` —
``(tenant_id, id)`` of the rows still pending, sending or failed — and the count reads open rows only, with or
without statistics (tests/commands/test_deliveries.py reads the plans). The column is filled from each row's invoice.

Tortoise adds a NOT NULL foreign key in one ``ALTER TABLE``, which fails on a table that has rows; so the column is
added empty, filled, then constrained. SQLite cannot make an added column NOT NULL (only a table rebuild can, and a
rebuild drops the indexes, see 0019), so there the model and every writer keep it filled. The migration state is
the model's field, as ``AddField`` records it (tests/models/test_migrations.py).
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

_OPEN = "status IN ('pending', 'sending', 'failed')"
_INDEX_BY_TENANT = f'CREATE INDEX IF NOT EXISTS "delivery_open" ON "delivery" ("tenant_id", "id") WHERE {_OPEN}'
_INDEX_BY_ID = f'CREATE INDEX IF NOT EXISTS "delivery_open" ON "delivery" ("id") WHERE {_OPEN}'

_POSTGRES = [
    'ALTER TABLE "delivery" ADD COLUMN "tenant_id" INT',
    'UPDATE "delivery" SET "tenant_id" = i."tenant_id" FROM "invoice" i WHERE i."id" = "delivery"."invoice_id"',
    'ALTER TABLE "delivery" ALTER COLUMN "tenant_id" SET NOT NULL',
    'ALTER TABLE "delivery" ADD CONSTRAINT "fk_delivery_tenant" FOREIGN KEY ("tenant_id") '
    'REFERENCES "tenant" ("id") ON DELETE RESTRICT',
]
_SQLITE = [
    'ALTER TABLE "delivery" ADD COLUMN "tenant_id" INT REFERENCES "tenant" ("id") ON DELETE RESTRICT',
    'UPDATE "delivery" SET "tenant_id" = (SELECT i."tenant_id" FROM "invoice" i WHERE i."id" = "delivery"."invoice_id")',
]


class AddFilledTenant(ops.AddField):
    """``AddField`` in the migration state; in the database the column is added, filled from the invoice, then
    constrained, and ``delivery_open`` is rebuilt on ``(tenant_id, id)``."""

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if not state_editor:
            return
        postgres = state_editor.client.capabilities.dialect == "postgres"
        for sql in [*(_POSTGRES if postgres else _SQLITE), 'DROP INDEX IF EXISTS "delivery_open"', _INDEX_BY_TENANT]:
            await state_editor._run_sql(sql)

    async def database_backward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if not state_editor:
            return
        await state_editor._run_sql('DROP INDEX IF EXISTS "delivery_open"')
        await super().database_backward(app_label, old_state, new_state, state_editor)
        await state_editor._run_sql(_INDEX_BY_ID)


class Migration(migrations.Migration):
    dependencies = [('models', '0020_open_rows')]

    initial = False

    operations = [
        AddFilledTenant(
            model_name='Delivery',
            name='tenant',
            field=fields.ForeignKeyField('models.Tenant', source_field='tenant_id', db_constraint=True, to_field='id',
                                         related_name='deliveries', on_delete=OnDelete.RESTRICT),
        ),
    ]
