"""How long an outbox row (e-mail, Slack notice, SFTP file) or an API call waits before its next try.

Exponential: ``base`` after the first failed try, then twice as long each time, never more than
``cap`` seconds. Every sender uses this one rule, so "attempt k waits base × 2^(k-1)" holds everywhere.
"""

from __future__ import annotations

import math


def retry_delay(attempts: int, *, base: float, cap: float = math.inf) -> float:
    """Seconds to wait after ``attempts`` (≥ 1) failed tries."""
    return min(cap, base * 2.0 ** (attempts - 1))
