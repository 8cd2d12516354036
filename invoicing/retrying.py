"""Running a whole transaction again when the database aborted it because of another one.

Every writer takes its row locks in one order (docs/architecture.md, "Lock order"), so
transactions of ours do not deadlock each other. What is left is transient: PostgreSQL may
still abort a transaction as a deadlock victim or as a serialization failure (a lock order
we do not control, e.g. foreign-key checks), and SQLite answers "database is locked" when
another *process* (``invoicebot run``, ``invoicebot token create``) held the write lock past
the busy timeout. Nothing of the aborted transaction was written, so running it again from
``BEGIN`` is safe and, once the other transaction has finished, succeeds.

Two spellings of the same policy (``invoicing.sql.is_transient_failure`` decides what is
transient; ``ATTEMPTS`` tries at most, with a jittered exponential pause in between, so
concurrent victims do not collide again in step):

* ``await atomic_retry(work)`` runs ``work(connection)`` in a transaction, again on failure;
* ``async for attempt in transaction_attempts(): async with attempt: …`` for a transaction
  written inline (the invoice run), whose block then runs again on failure.

Either way the block must be safe to run again: it may only write to the database (what
leaves the service goes through the outbox after commit) and must read what it needs inside
the transaction. Inside an enclosing transaction there is no retry (the enclosing one is the
unit that can run again), and a failure of ``COMMIT`` itself is not retried: a block that
has returned cannot run again. Each retry is logged at WARNING (``retrying transaction``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from tenacity import AsyncRetrying, AttemptManager, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_random_exponential
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient, TransactionContext
from tortoise.transactions import in_transaction

from invoicing.sql import is_transient_failure

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Tries of one transaction in all (the first and up to three retries).
ATTEMPTS = 4
#: The pause before retry n is uniform in [0, min(MAX_PAUSE, FIRST_PAUSE × 2ⁿ)] seconds ("full jitter").
FIRST_PAUSE = 0.05
MAX_PAUSE = 1.0


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning("retrying transaction attempt=%d of=%d error=%s: %s", state.attempt_number + 1, ATTEMPTS,
                type(error).__name__, str(error).splitlines()[0] if error is not None and str(error) else "")


def _policy(connection_name: str | None, also: Callable[[BaseException], bool] | None = None) -> AsyncRetrying:
    nested = isinstance(connections.get(connection_name or "default"), TransactionalDBClient)
    return AsyncRetrying(
        stop=stop_after_attempt(1 if nested else ATTEMPTS),
        wait=wait_random_exponential(multiplier=FIRST_PAUSE, max=MAX_PAUSE),
        retry=retry_if_exception(lambda exc: is_transient_failure(exc) or (also is not None and also(exc))),
        before_sleep=_log_retry,
        reraise=True,
    )


async def atomic_retry(
    work: Callable[[BaseDBAsyncClient], Awaitable[T]],
    *,
    connection_name: str | None = None,
    also: Callable[[BaseException], bool] | None = None,
) -> T:
    """``work(connection)`` in one transaction, run again (new transaction) on a transient failure.

    ``also`` names further errors that are transient *for this work*: an upsert that lost a
    race to insert the same new row (``sql.is_unique_violation``) finds that row when it runs
    again. Returns what the committed attempt returned; raises the last error when every
    attempt failed, and any other error at once (after rolling back).
    """

    async def attempt() -> T:
        async with in_transaction(connection_name) as connection:
            return await work(connection)

    return await _policy(connection_name, also)(attempt)


class TransactionAttempt:
    """One try of an inline transaction: ``async with attempt as connection`` (see ``transaction_attempts``).

    The block runs in a fresh transaction, committed when it ends and rolled back when it
    raises. A transient failure inside the block is handed to the retry loop (the block
    runs again, or the error is raised after the last attempt); any other error propagates.
    """

    def __init__(self, manager: AttemptManager, connection_name: str | None) -> None:
        self._manager = manager
        self._connection_name = connection_name
        self._context: TransactionContext | None = None

    async def _begin(self) -> BaseDBAsyncClient:
        context = in_transaction(self._connection_name)
        connection = await context.__aenter__()
        self._context = context
        return connection

    async def __aenter__(self) -> BaseDBAsyncClient:
        # BEGIN itself may meet the lock (SQLite's BEGIN IMMEDIATE): retried with the same policy.
        return await _policy(self._connection_name)(self._begin)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._context is not None
        await self._context.__aexit__(exc_type, exc, tb)  # commit, or roll back after an error
        if exc is None:
            self._manager.__exit__(None, None, None)
            return False
        if not is_transient_failure(exc):
            return False
        return bool(self._manager.__exit__(exc_type, exc, tb))  # recorded: the loop retries or re-raises it


class TransactionAttempts:
    """The attempts of one inline transaction (an async iterator); see ``transaction_attempts``."""

    def __init__(self, connection_name: str | None) -> None:
        self._connection_name = connection_name
        self._retrying = _policy(connection_name).__aiter__()

    def __aiter__(self) -> TransactionAttempts:
        return self

    async def __anext__(self) -> TransactionAttempt:
        return TransactionAttempt(await self._retrying.__anext__(), self._connection_name)


def transaction_attempts(*, connection_name: str | None = None) -> TransactionAttempts:
    """The attempts of one inline transaction; the loop ends after the first one that commits.

    ::

        async for attempt in transaction_attempts():
            async with attempt:
                ...  # the whole transaction; runs again after a deadlock or "database is locked"

    A ``return`` inside the block commits and leaves the loop, as it would leave
    ``async with in_transaction()``.
    """
    return TransactionAttempts(connection_name)
