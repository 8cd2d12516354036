"""PDF rendering in worker processes for the long-running service.

Rendering is CPU-bound (about 6 ms for 20 lines, 60 ms for 500) and holds the GIL,
so in-process it would stall the event loop that acknowledges Slack commands and
serves the feed. ``invoicebot serve`` therefore renders in a small process pool,
started on first use (``spawn``: workers import only the renderer, not the
service's sockets and database connections). The main process never imports
fpdf2/fontTools, which keeps the idle service small. Output is identical: the
renderer is deterministic.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

from invoicing.billing.document import InvoiceDocument


def _render(document: InvoiceDocument) -> bytes:
    from invoicing.delivery.pdf import render_invoice_pdf

    return render_invoice_pdf(document)


def _preload() -> None:
    from invoicing.delivery.fonts.faces import preload

    preload()


class RenderPool:
    """``pool(doc)`` blocks (for the outbox's worker thread); ``await pool.render(doc)`` does not."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                 initializer=_preload)
            return self._pool

    def __call__(self, document: InvoiceDocument) -> bytes:
        return self._executor().submit(_render, document).result()

    async def render(self, document: InvoiceDocument) -> bytes:
        return await asyncio.wrap_future(self._executor().submit(_render, document))

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None


async def render_in_thread(document: InvoiceDocument) -> bytes:
    """The default for code that runs without a pool (CLI, tests): a thread, same bytes."""
    return await asyncio.to_thread(_render, document)
