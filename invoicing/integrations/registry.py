"""Where each integration kind plugs in: its run function, keyed by kind.

The scheduler claims due integrations of every kind with one statement and calls
``RUNNERS[kind]`` for each. A new kind adds a value to ``models.IntegrationKind``, a
package ``invoicing/integrations/<kind>/`` with its settings and run function, and
one entry here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from invoicing.billing.runs import RunReport
from invoicing.integrations.pdf_emailer.batch import BatchResult, run_batch
from invoicing.integrations.pdf_emailer.run import run_company
from invoicing.integrations.xml_export.run import run_company as export_company
from models import IntegrationKind

#: ``run(tenant, company, *, trigger, cutoff, clock, actor, lease_check) -> RunReport`` (``lease_check``:
#: awaited inside the run's transaction, see ``pdf_emailer.run``); the composition
#: root binds deployment settings (e.g. the mail domain) with ``functools.partial``.
Runner = Callable[..., Awaitable[RunReport]]

RUNNERS: Mapping[IntegrationKind, Runner] = {
    IntegrationKind.PDF_EMAILER: run_company,
    IntegrationKind.XML_EXPORT: export_company,
}

#: ``run_batch(tenant, items, *, actor, clock, hold) -> BatchResult``: many due integrations of one kind and
#: tenant at once (``pdf_emailer.batch``); what it leaves out, the scheduler runs alone with ``RUNNERS``.
BatchRunner = Callable[..., Awaitable[BatchResult]]

BATCH_RUNNERS: Mapping[IntegrationKind, BatchRunner] = {
    IntegrationKind.PDF_EMAILER: run_batch,
}
