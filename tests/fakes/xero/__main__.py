"""Run the fake Xero as a program: ``python -m tests.fakes.xero [--per-minute 600 …]``.

It registers one app and organisations, logs in ``--user`` to all of them, prints one JSON line
(``base_url``, ``client_id``, ``client_secret``, ``tenant_ids``) and serves until its stdin closes.
``GET /_fake/state`` answers what it saw (see ``state.snapshot``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from tests.fakes.xero.limits import Limits
from tests.fakes.xero.server import FakeXero


async def _serve(args: argparse.Namespace) -> None:
    limits = Limits(concurrent=args.concurrent, per_minute=args.per_minute, per_day=args.per_day,
                    app_per_minute=args.app_per_minute)
    async with FakeXero(limits=limits, latency=args.latency, port=args.port) as xero:
        app = xero.register_app(args.client_id, args.client_secret,
                                redirect_uris=args.redirect_uri or None)
        orgs = [xero.add_organisation(f"Org {n + 1}", tier=args.tier) for n in range(args.organisations)]
        xero.authorize_as(args.user, orgs)
        print(json.dumps({"base_url": xero.base_url, "client_id": app.client_id,
                          "client_secret": app.client_secret, "tenant_ids": [o.tenant_id for o in orgs]}),
              flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin (or dies)


def main() -> None:
    parser = argparse.ArgumentParser(description="A local fake Xero (identity + Accounting API)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--client-id")
    parser.add_argument("--client-secret")
    parser.add_argument("--redirect-uri", action="append", help="registered redirect URI (repeatable; default any)")
    parser.add_argument("--user", default="dana")
    parser.add_argument("--organisations", type=int, default=1)
    parser.add_argument("--tier", choices=["standard", "starter"], default="standard")
    parser.add_argument("--concurrent", type=int, default=5)
    parser.add_argument("--per-minute", type=int, default=60)
    parser.add_argument("--per-day", type=int, default=5000)
    parser.add_argument("--app-per-minute", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each accounting call takes")
    asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
