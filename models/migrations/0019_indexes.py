"""Indexes (issue 17's burst): every foreign key leads one, the outboxes' due-selection has ``(status, next_attempt_at)``,
and the indexes earlier migrations declared but did not build are built.

* ``(status, next_attempt_at)`` on ``delivery`` and ``slack_notice``: every pass of the e-mail outbox and the notice
  worker read every sent row (benchmarks/queue_history.py: 10× slower behind 200,000 sent rows).
* ``integration (kind, enabled, next_run_at, id)``: ``/invoicing schedule`` read and sorted every due integration
  for one page when they tie on ``next_run_at`` (a Sunday burst: all of them).
* One index per foreign key: without it a lookup or join from the parent side reads the whole child table
  (``/invoicing deliveries`` joined delivery to invoice as a nested loop over two sequential scans).
* ``RepairIndexes``: Tortoise's ``AddField(db_index=True)`` creates no index (``slack_request_seen.retain_until``,
  both backends), and on SQLite an ``AlterField`` rebuilds the table without its indexes — the rebuilt
  ``invoice_line``, ``order_item``, ``slack_notice`` and ``invoice_run`` had lost theirs, including
  ``invoice_run.invoice_id``'s UNIQUE. ``IF NOT EXISTS`` with the names Tortoise gives them: a database that has
  one keeps it. tests/models/test_indexes.py compares the migrated schema with the models on both backends.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class RepairIndexes(ops.RunSQL):
    """``CREATE INDEX IF NOT EXISTS`` for each backend; the migration state does not change (the models declared
    these indexes all along)."""

    def __init__(self, *, common: list[str], sqlite: list[str]) -> None:
        super().__init__(common)
        self.sqlite = sqlite

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if not state_editor:
            return
        statements = list(self.sql)
        if state_editor.client.capabilities.dialect == "sqlite":
            statements += self.sqlite
        await self._run_sql(state_editor, statements)


class Migration(migrations.Migration):
    dependencies = [('models', '0018_xero_pushes')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='ApiToken',
            index=Index(fields=['tenant_id']),
        ),
        ops.AddIndex(
            model_name='AuditEntry',
            index=Index(fields=['tenant_id', 'id']),
        ),
        ops.AddIndex(
            model_name='CreditNote',
            index=Index(fields=['company_id']),
        ),
        ops.AddIndex(
            model_name='CreditNote',
            index=Index(fields=['invoice_id']),
        ),
        ops.AddIndex(
            model_name='Delivery',
            index=Index(fields=['status', 'next_attempt_at']),
        ),
        ops.AddIndex(
            model_name='Delivery',
            index=Index(fields=['invoice_id']),
        ),
        ops.AddIndex(
            model_name='Delivery',
            index=Index(fields=['credit_note_id']),
        ),
        ops.AddIndex(
            model_name='Integration',
            index=Index(fields=['kind', 'enabled', 'next_run_at', 'id']),
        ),
        ops.AddIndex(
            model_name='Invoice',
            index=Index(fields=['company_id']),
        ),
        ops.AddIndex(
            model_name='InvoiceRun',
            index=Index(fields=['company_id']),
        ),
        ops.AddIndex(
            model_name='InvoiceRun',
            index=Index(fields=['integration_id']),
        ),
        ops.AddIndex(
            model_name='InvoiceRun',
            index=Index(fields=['tenant_id']),
        ),
        ops.AddIndex(
            model_name='Order',
            index=Index(fields=['invoice_id']),
        ),
        ops.AddIndex(
            model_name='Price',
            index=Index(fields=['retailer_id']),
        ),
        ops.AddIndex(
            model_name='RunApproval',
            index=Index(fields=['company_id']),
        ),
        ops.AddIndex(
            model_name='RunApproval',
            index=Index(fields=['integration_id']),
        ),
        ops.AddIndex(
            model_name='RunApproval',
            index=Index(fields=['invoice_id']),
        ),
        ops.AddIndex(
            model_name='RunApproval',
            index=Index(fields=['run_id']),
        ),
        ops.AddIndex(
            model_name='RunApproval',
            index=Index(fields=['tenant_id']),
        ),
        ops.AddIndex(
            model_name='SlackNotice',
            index=Index(fields=['status', 'next_attempt_at']),
        ),
        ops.AddIndex(
            model_name='SlackNotice',
            index=Index(fields=['tenant_id', 'channel', 'id']),
        ),
        ops.AddIndex(
            model_name='SlackNotice',
            index=Index(fields=['company_id']),
        ),
        ops.AddIndex(
            model_name='XeroAuthState',
            index=Index(fields=['company_id']),
        ),
        ops.AddIndex(
            model_name='XeroAuthState',
            index=Index(fields=['tenant_id']),
        ),
        ops.AddIndex(
            model_name='XeroConnection',
            index=Index(fields=['company_id']),
        ),
        ops.AddIndex(
            model_name='XeroConnection',
            index=Index(fields=['tenant_id']),
        ),
        ops.AddIndex(
            model_name='XeroPush',
            index=Index(fields=['company_id']),
        ),
        ops.AddIndex(
            model_name='XeroPush',
            index=Index(fields=['connection_id']),
        ),
        ops.AddIndex(
            model_name='XeroPush',
            index=Index(fields=['credit_note_id']),
        ),
        ops.AddIndex(
            model_name='XeroPush',
            index=Index(fields=['invoice_id']),
        ),
        ops.AddIndex(
            model_name='XeroPush',
            index=Index(fields=['tenant_id']),
        ),
        ops.AddIndex(
            model_name='XmlExport',
            index=Index(fields=['credit_note_id']),
        ),
        ops.AddIndex(
            model_name='XmlExport',
            index=Index(fields=['integration_id']),
        ),
        ops.AddIndex(
            model_name='XmlExport',
            index=Index(fields=['invoice_id']),
        ),
        ops.AddIndex(
            model_name='XmlExport',
            index=Index(fields=['tenant_id']),
        ),
        RepairIndexes(
            common=['CREATE INDEX IF NOT EXISTS "idx_slack_reque_retain__825bb9" '
                    'ON "slack_request_seen" ("retain_until")'],
            sqlite=[
                'CREATE INDEX IF NOT EXISTS "idx_invoice_lin_invoice_8b9e5c" ON "invoice_line" ("invoice_id")',
                'CREATE INDEX IF NOT EXISTS "idx_order_item_order_i_a417da" ON "order_item" ("order_id")',
                'CREATE INDEX IF NOT EXISTS "idx_slack_notic_next_at_67b9c1" ON "slack_notice" ("next_attempt_at")',
                # PostgreSQL has it as the constraint invoice_run_invoice_id_key.
                'CREATE UNIQUE INDEX IF NOT EXISTS "uid_invoice_run_invoice_5b0fa2" ON "invoice_run" ("invoice_id")',
            ],
        ),
    ]
