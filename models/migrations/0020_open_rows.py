"""Partial indexes on the rows still open (issue 17's burst): an e-mail or Slack notice pending, sending or failed.

``/invoicing deliveries`` lists those, newest first. With only ``(status, next_attempt_at)`` PostgreSQL walked the
primary key backwards through every row ever sent to find the few open ones (every delivery of the tenant's
history per command), or joined all the tenant's invoices to count them. These indexes hold the open rows only —
a burst's backlog at most — in the order the list reads them. Its statements name the statuses as constants
(``Statement.constants_in``): a planner sees that a partial index applies only from the query's own text.
The models cannot declare them (Tortoise's ``PartialIndex`` knows equality only); tests/models/test_indexes.py
checks they exist on both backends.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

_OPEN = "status IN ('pending', 'sending', 'failed')"


class Migration(migrations.Migration):
    dependencies = [('models', '0019_indexes')]

    initial = False

    operations = [
        ops.RunSQL(
            [f'CREATE INDEX IF NOT EXISTS "delivery_open" ON "delivery" ("id") WHERE {_OPEN}',
             f'CREATE INDEX IF NOT EXISTS "slack_notice_open" ON "slack_notice" ("tenant_id", "id") WHERE {_OPEN}'],
            ['DROP INDEX IF EXISTS "delivery_open"', 'DROP INDEX IF EXISTS "slack_notice_open"'],
        ),
    ]
