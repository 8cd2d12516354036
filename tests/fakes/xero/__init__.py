"""A local fake of Xero (identity + Accounting API) that validates every request against Xero's OpenAPI spec."""

from tests.fakes.xero.clock import FakeClock
from tests.fakes.xero.limits import Limits
from tests.fakes.xero.server import FakeXero
from tests.fakes.xero.store import FakeApp, FakeOrg, OrgStore

__all__ = ["FakeApp", "FakeClock", "FakeOrg", "FakeXero", "Limits", "OrgStore"]
