"""PostgreSQL's plan of a hand-written statement, for the tests that pin a plan whatever the statistics say."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from invoicing.sql import Statement, json_value


@dataclass(frozen=True)
class Scan:
    """One scan of a table or index: the subplans it runs under (``InitPlan 1 (returns $0)``, ``CTE chosen``;
    none in the main plan), its node type, its table and its index ("" when it names none: a bitmap heap scan
    names only the table, its bitmap index scan only the index)."""

    under: tuple[str, ...]
    node: str
    relation: str
    index: str

    def within(self, prefix: str) -> bool:
        """Whether a subplan whose name starts with ``prefix`` holds this scan."""
        return any(name.startswith(prefix) for name in self.under)


async def scans(q: Statement, sql: str) -> list[Scan]:
    """The scans of ``EXPLAIN (FORMAT JSON) sql`` (its values bound in ``q``), in plan order."""
    [(plan,)] = await q.rows(f"EXPLAIN (FORMAT JSON) {sql}")
    return list(_scans(json_value(plan)[0]["Plan"], ()))


def _scans(plan: dict[str, Any], under: tuple[str, ...]) -> Iterator[Scan]:
    if "Subplan Name" in plan:
        under = (*under, plan["Subplan Name"])
    relation, index = plan.get("Relation Name", ""), plan.get("Index Name", "")
    if "Scan" in plan["Node Type"] and (relation or index):  # not a CTE, function or subquery scan
        yield Scan(under, plan["Node Type"], relation, index)
    for child in plan.get("Plans", []):
        yield from _scans(child, under)
