"""PDF rendering in worker processes for the long-running service.

Rendering is CPU-bound (about 6 ms for 20 lines, 60 ms for 500) and holds the GIL,
so in-process it would stall the event loop that acknowledges Slack commands and
serves the feed. ``invoicebot serve`` therefore renders in a small process pool,
started on first use (``spawn``: workers import only the renderer, not the
service's sockets and database connections; ``serve`` starts them when it starts, see
``RenderPool.warm``). The main process never imports
fpdf2/fontTools, which keeps the idle service small. Output is identical: the
renderer is deterministic.

The outbox's e-mails are rendered *and composed* there too (``render_and_compose``):
composing base64-encodes the PDF and folds headers, CPU work the loop would otherwise
do for every message; the worker returns the message as bytes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor

from invoicing.billing.document import InvoiceDocument
from invoicing.delivery.einvoice.hybrid import HybridPdf
from invoicing.delivery.outbox_compose import Composed, ComposeRequest


def _render(document: InvoiceDocument) -> bytes:
    from invoicing.delivery.pdf import render_invoice_pdf

    return render_invoice_pdf(document)


def _render_facturx(document: InvoiceDocument) -> HybridPdf:
    from invoicing.delivery.einvoice.hybrid import render_hybrid
    from invoicing.delivery.pdf import render_invoice_pdf

    return render_hybrid(render_invoice_pdf, document)


def _render_and_compose(document: InvoiceDocument, request: ComposeRequest) -> Composed:
    from invoicing.delivery.outbox_compose import render_and_compose
    from invoicing.delivery.pdf import render_invoice_pdf

    return render_and_compose(render_invoice_pdf, document, request)


def _ready() -> None:
    """A task that only makes a worker exist (``RenderPool.warm``): the initializer did the work."""


def _preload() -> None:
    """Each worker's start: follow the parent out (``_exit_with_parent``), parse the fonts."""
    _exit_with_parent()
    from invoicing.delivery.fonts.faces import preload

    preload()


def _exit_with_parent() -> None:
    """End this worker once the process that started it is gone.

    A service stopped cleanly shuts its pool down; one killed outright (SIGKILL, an OOM kill) runs no
    shutdown, and its workers, blocked on the task queue, stayed for good — 85 MB each, two more after
    every restart. A daemon thread waits on multiprocessing's parent sentinel (a pipe the parent holds
    open, so it reads as ready once the parent is gone, also when that happened before this worker got
    here) and leaves without cleanup: the tasks it could finish have nobody left to take them.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


#: Renders per worker before it is replaced (``max_tasks_per_child``); see ``RenderPool``.
RENDERS_PER_WORKER = 10_000


class RenderPool:
    """``await pool.render(doc)`` / ``render_facturx`` from the loop; ``pool(doc)`` / ``facturx`` block (threads).

    Each worker is replaced by a fresh one after ``renders_per_worker`` renders
    (``None``: never). This is a bound, not a leak fix: ``benchmarks/memory.py`` and
    900 mixed renders in one process (1 to 500 lines, changing glyph sets) found a
    worker flat at 83–85 MB, its caches bounded (font subsets, wrapped text). But a
    process's RSS is its high-water mark — glibc keeps freed heap for reuse, so one
    huge invoice, or fragmentation from fpdf2/fontTools' many short-lived objects,
    stays for the process's life (issue 12 saw workers at 104 → 196 MB in a trial).
    Recycling caps that at whatever ``renders_per_worker`` renders can accumulate.
    A new worker costs one spawn and font preload, about 1.5 s CPU, and the workers take
    renders in turn, so they reach the bound together and rendering stops while both are
    replaced: at 2,000 a burst of 5,000 companies paused for a second at the 4,000th e-mail
    and spent 0.75 ms CPU per invoice on respawns. At 10,000 a burst of 10,000 companies
    never recycles, and respawns cost 0.15 ms per render.
    """

    def __init__(self, workers: int = 2, *, renders_per_worker: int | None = RENDERS_PER_WORKER) -> None:
        self.workers = workers
        self.renders_per_worker = renders_per_worker
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_preload, max_tasks_per_child=self.renders_per_worker)
            return self._pool

    def warm(self) -> None:
        """Start every worker now, without waiting for them (``invoicebot serve`` calls it at start).

        A worker's spawn and font preload take about 1.5 s of CPU. Started on first use, that
        cost lands in the first seconds of a scheduled burst, when the CPU is busiest and the
        first e-mails wait for it. Each submitted task makes the executor spawn one more
        worker while none is idle, so ``workers`` tasks start them all.
        """
        executor = self._executor()
        for _ in range(self.workers):
            executor.submit(_ready)

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (for memory figures); empty before the first render."""
        with self._lock:
            pool = self._pool
        if pool is None:
            return []
        processes = getattr(pool, "_processes", None) or {}  # the executor's own table; no public API
        return sorted(pid for pid, process in list(processes.items()) if process.is_alive())

    def __call__(self, document: InvoiceDocument) -> bytes:
        return self._executor().submit(_render, document).result()

    def facturx(self, document: InvoiceDocument) -> HybridPdf:
        """The Factur-X PDF (or the plain one and the reason), rendered and attached in a worker; blocks."""
        return self._executor().submit(_render_facturx, document).result()

    async def render(self, document: InvoiceDocument) -> bytes:
        return await asyncio.wrap_future(self._executor().submit(_render, document))

    async def render_facturx(self, document: InvoiceDocument) -> HybridPdf:
        """``facturx`` awaited on the loop: the worker's future, no thread waiting on it."""
        return await asyncio.wrap_future(self._executor().submit(_render_facturx, document))

    async def render_and_compose(self, document: InvoiceDocument, request: ComposeRequest) -> Composed:
        """The outbox's e-mail of ``document``, rendered and composed in a worker (``outbox_compose``)."""
        return await asyncio.wrap_future(self._executor().submit(_render_and_compose, document, request))

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


async def render_in_thread(document: InvoiceDocument) -> bytes:
    """The default for code that runs without a pool (CLI, tests): a thread, same bytes."""
    return await asyncio.to_thread(_render, document)
