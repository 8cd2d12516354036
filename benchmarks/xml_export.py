"""Benchmark of the XML export (issue 15): 100,000 orders of one company — build, validate, upload.

Run: ``.venv/bin/python benchmarks/xml_export.py [--orders 100000] [--rounds 2] [--server-process]``

Steps, each timed (seconds), with the issue's targets:

* **build**: ``writer.write_orders`` of ``--orders`` orders (1-3 lines each) into a file. The orders are
  generated lazily in memory (``sample.generated_orders``); ``build`` is one function so it can be switched to
  real database rows (``selection``) without touching the rest;
* **validate**: ``validation.validate_orders_file`` (streamed XSD + totals);
* **upload**: ``destinations.upload`` to the test SFTP server (``tests/fakes/sftp_server.py``, in this process,
  or with ``--server-process`` in a child process so client and server each get a core), and in the same run a
  bare asyncssh ``sftp.put`` of the same file; best of ``--rounds`` each. Target: ours ≥ 0.8 × bare.

Also printed: the file size and the peak RSS growth of this process over build + validate + upload (target
≤ 100 MB: everything is streamed; with the in-process server its buffers are included). Figures, not asserts:
a shared 2-core machine moves the seconds by ±20 %.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncssh

from invoicing.integrations.xml_export.destinations import SftpTarget, upload
from invoicing.integrations.xml_export.file_names import file_name
from invoicing.integrations.xml_export.sample import SAMPLE_HEADER, generated_orders
from invoicing.integrations.xml_export.targets import openssh_line
from invoicing.integrations.xml_export.validation import orders_schema, validate_orders_file
from invoicing.integrations.xml_export.writer import write_orders
from tests.fakes.sftp_server import SftpServer, UserAuth, spawn_server

REPOSITORY = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(path: Path, count: int) -> int:
    """Write the file of ``count`` orders of one company (the step the lead will feed from the database)."""
    header = SAMPLE_HEADER.__class__(**{**SAMPLE_HEADER.__dict__, "skipped": ()})
    with path.open("wb") as out:
        return write_orders(out, header, generated_orders(count))


async def bare_put(port: int, key: asyncssh.SSHKey, host_key: str, source: Path) -> None:
    known = asyncssh.import_known_hosts(f"* {host_key}\n")
    async with await asyncssh.connect("127.0.0.1", port, username="acme", client_keys=[key], agent_path=None,
                                      config=[], known_hosts=known) as conn, conn.start_sftp_client() as sftp:
        await sftp.put(str(source), "/upload/bare.xml")


async def timed(step: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await step()
    return time.perf_counter() - started


async def upload_step(source: Path, name: str, rounds: int, server_process: bool, tmp: Path) -> dict[str, float]:
    """Best seconds of our ``upload`` and of a bare ``sftp.put`` of ``source``, alternating, same server; also
    ``rss_ours``: this process's peak RSS (MB) after our first upload, before any bare put."""
    root = tmp / "root"
    (root / "upload").mkdir(parents=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    child, server = None, None
    if server_process:
        (tmp / "authorized").write_text(openssh_line(key) + "\n")
        spawned = await spawn_server(root, tmp / "authorized", tmp / "port")
        child, port, host_key = spawned.process, spawned.port, spawned.host_key_line
    else:
        server = SftpServer(root, {"acme": UserAuth(keys=[openssh_line(key)])})
        await server.start()
        port, host_key = server.port, server.host_key_line
    target = SftpTarget("127.0.0.1", port, "acme", "/upload", host_key, key.export_private_key().decode(), None)
    best = {"ours": float("inf"), "bare": float("inf")}
    try:
        best["ours"] = await timed(lambda: upload(target, name, source, timeout=120))
        best["rss_ours"] = peak_rss_mb()
        for _ in range(rounds):
            best["ours"] = min(best["ours"], await timed(lambda: upload(target, name, source, timeout=120)))
            best["bare"] = min(best["bare"], await timed(lambda: bare_put(port, key, host_key, source)))
        arrived = root / "upload" / name
        assert arrived.stat().st_size == source.stat().st_size, "the uploaded file is not the built one"
    finally:
        if server is not None:
            await server.stop()
        if child is not None:
            child.terminate()
            child.wait()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--server-process", action="store_true")
    args = parser.parse_args()
    orders_schema()  # compiled once per process: not part of validating one file
    with tempfile.TemporaryDirectory() as tmp:
        name = file_name("inkwell", "zeta", 17)
        path = Path(tmp) / name
        rss_before = peak_rss_mb()
        started = time.perf_counter()
        count = build(path, args.orders)
        built = time.perf_counter()
        rss_built = peak_rss_mb()
        validate_orders_file(path)
        validated = time.perf_counter()
        growth = peak_rss_mb() - rss_before
        best = asyncio.run(upload_step(path, name, args.rounds, args.server_process, Path(tmp)))
        upload_growth = best["rss_ours"] - rss_before
        size_mb = path.stat().st_size / 1e6
    where = "a child process" if args.server_process else "this process"
    ratio = best["bare"] / best["ours"]
    print(f"XML export of {count:,} orders for one company ({size_mb:.1f} MB), SFTP server in {where}:")
    print(f"  build     {built - started:7.2f} s  ({count / (built - started):,.0f} orders/s)")
    print(f"  validate  {validated - built:7.2f} s  ({count / (validated - built):,.0f} orders/s)")
    print(f"  upload    {best['ours']:7.2f} s  ({size_mb / best['ours']:.1f} MB/s; bare sftp.put "
          f"{best['bare']:.2f} s, {size_mb / best['bare']:.1f} MB/s; best of {args.rounds})")
    print(f"  total     {built - started + validated - built + best['ours']:7.2f} s")
    print(f"  peak RSS growth: build {rss_built - rss_before:.1f} MB, + validate {growth:.1f} MB, + our upload "
          f"{upload_growth:.1f} MB{' (with the in-process server receiving it)' if not args.server_process else ''}"
          f" (target <= 100 MB: {'ok' if upload_growth <= 100 else 'MISSED'})")
    print(f"  upload throughput ours/bare {ratio:.2f} (target >= 0.8: {'ok' if ratio >= 0.8 else 'MISSED'})")


if __name__ == "__main__":
    main()
