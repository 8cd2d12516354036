"""Delivery to a local directory (e.g. a mounted share): the same guarantees as SFTP, with the OS's calls.

``<name>.part`` is written and fsynced, ``os.replace``d over ``<name>`` and the directory is fsynced, so after a
crash the final name is either absent, the previous complete file or the new complete file. The directory must
exist (a missing mount must not silently fill the local disk). Blocking I/O runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from pathlib import Path

from invoicing.integrations.xml_export.sftp_errors import UploadError, classify_local
from invoicing.integrations.xml_export.targets import LocalTarget

PART_SUFFIX = ".part"
PROBE_PREFIX = ".invoicebot-probe-"
_CHUNK = 1024 * 1024


def _check_directory(directory: Path) -> None:
    if not directory.is_dir():
        what = "is not a directory" if directory.exists() else "does not exist"
        raise UploadError(f"The directory {directory} {what} on this machine (no_directory). Create it (or mount "
                          "the share) or correct the destination.", kind="no_directory")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(target: LocalTarget, name: str, source: Path) -> int:
    _check_directory(target.path)
    temporary = target.path / (name + PART_SUFFIX)
    try:
        with source.open("rb") as src, temporary.open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
            size = dst.tell()
        os.replace(temporary, target.path / name)
        _fsync_directory(target.path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # frees the space a full disk needs; nothing to do when it cannot
            temporary.unlink(missing_ok=True)
        raise classify_local(exc, str(target.path)) from None
    return size


def _probe(target: LocalTarget) -> list[str]:
    _check_directory(target.path)
    steps = [f"the directory {target.path} exists"]
    probe = target.path / (PROBE_PREFIX + secrets.token_hex(6))
    try:
        probe.write_bytes(b"InvoiceBot connection test; safe to delete.\n")
        steps.append(f"wrote {probe.name}")
        probe.unlink()
        steps.append(f"removed {probe.name}")
    except OSError as exc:
        raise classify_local(exc, str(target.path)) from None
    return steps


async def upload_local(target: LocalTarget, name: str, source: Path) -> int:
    """Copy ``source`` to ``target.path / name`` atomically; returns the size written."""
    return await asyncio.to_thread(_write, target, name, source)


async def probe_local(target: LocalTarget) -> list[str]:
    return await asyncio.to_thread(_probe, target)
