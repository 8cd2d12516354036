"""Delivering export files: to a real asyncssh SFTP server (in-process, chrooted) and to a local directory.

A file only ever appears complete under its final name; an unknown or changed host key is never accepted;
every failure is an UploadError whose kind, permanence and words say what to do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncssh
import pytest

from invoicing.errors import InvalidInput
from invoicing.integrations.xml_export.destinations import (
    LocalTarget,
    SftpTarget,
    UploadError,
    fingerprint,
    probe,
    server_host_key,
    upload,
)
from invoicing.integrations.xml_export.targets import openssh_line
from tests.fakes.sftp_server import ServerProcess, SftpServer, UserAuth, spawn_server

PASSWORD = "correct horse battery staple"
NAME = "inkwell-acme-000017.xml"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "out" / NAME
    path.parent.mkdir()
    path.write_bytes(b"<?xml version='1.0'?>\n<orders>" + os.urandom(3_000_000).hex().encode() + b"</orders>\n")
    return path


@pytest.fixture
async def server(tmp_path: Path, client_key: asyncssh.SSHKey) -> AsyncIterator[SftpServer]:
    root = tmp_path / "root"
    (root / "upload").mkdir(parents=True)
    async with SftpServer(root, {"acme": UserAuth(keys=[openssh_line(client_key)], password=PASSWORD)}) as s:
        yield s
    (root / "upload").chmod(0o755)


@pytest.fixture
def target(server: SftpServer, client_key: asyncssh.SSHKey) -> SftpTarget:
    return SftpTarget(host="127.0.0.1", port=server.port, username="acme", path="/upload",
                      host_key=server.host_key_line, private_key=client_key.export_private_key().decode(),
                      password=None)


def listing(server: SftpServer, directory: str = "upload") -> list[str]:
    return sorted(os.listdir(server.root / directory))


async def refused(target: SftpTarget | LocalTarget, source: Path, **kw: float) -> UploadError:
    with pytest.raises(UploadError) as caught:
        await upload(target, NAME, source, **kw)
    return caught.value


async def test_an_upload_lands_under_its_final_name_with_the_same_bytes_and_no_part_file(server, target, source):
    done = await upload(target, NAME, source)
    assert done.location == f"sftp://127.0.0.1:{server.port}/upload/{NAME}"
    assert done.size == source.stat().st_size
    assert listing(server) == [NAME]
    assert sha256(server.root / "upload" / NAME) == sha256(source)
    assert server.renames == 1  # posix-rename@openssh.com, not a copy under the final name


async def test_uploading_the_same_name_again_is_harmless_and_a_new_version_replaces_it(server, target, source):
    await upload(target, NAME, source)
    await upload(target, NAME, source)
    assert listing(server) == [NAME] and sha256(server.root / "upload" / NAME) == sha256(source)
    source.write_bytes(b"<orders/>\n")
    await upload(target, NAME, source)
    assert (server.root / "upload" / NAME).read_bytes() == b"<orders/>\n" and listing(server) == [NAME]


async def test_without_posix_rename_the_old_copy_is_removed_then_replaced(server, target, source):
    server.posix_rename = False
    await upload(target, NAME, source)
    source.write_bytes(b"<orders/>\n")
    await upload(target, NAME, source)
    assert listing(server) == [NAME] and (server.root / "upload" / NAME).read_bytes() == b"<orders/>\n"
    assert server.renames == 0


async def test_a_partial_upload_never_shows_the_final_name_and_the_retry_completes_it(server, target, source):
    server.write_delay = 0.05
    attempt = asyncio.ensure_future(upload(target, NAME, source))
    part = server.root / "upload" / (NAME + ".part")
    for _ in range(400):
        if server.bytes_written > 0:
            break
        await asyncio.sleep(0.01)
    assert part.exists() and not (server.root / "upload" / NAME).exists()
    await server.stop()  # the server goes away mid-write
    with pytest.raises(UploadError) as caught:
        await attempt
    assert not caught.value.permanent and caught.value.kind == "unreachable" and "lost" in str(caught.value)
    assert not (server.root / "upload" / NAME).exists()
    assert part.stat().st_size < source.stat().st_size
    server.write_delay = 0
    await server.start()
    await upload(target, NAME, source)
    assert listing(server) == [NAME] and sha256(server.root / "upload" / NAME) == sha256(source)


async def test_an_unknown_host_key_is_refused_before_logging_in_and_names_the_offered_key(server, target, source):
    error = await refused(replace(target, host_key=None), source)
    assert error.kind == "host_key_unknown" and error.permanent
    assert error.offered_key == server.host_key_line
    assert server.fingerprint in str(error)
    assert server.auth_attempts == [] and listing(server) == []


@pytest.mark.parametrize("algorithm", ["ssh-ed25519", "ssh-rsa"])
async def test_a_changed_host_key_is_refused_and_names_the_new_key(server, target, source, algorithm):
    other = openssh_line(asyncssh.generate_private_key(algorithm))
    error = await refused(replace(target, host_key=other), source)
    assert error.kind == "host_key_changed" and error.permanent
    assert error.offered_key == server.host_key_line
    assert server.fingerprint in str(error) and fingerprint(other) in str(error)
    assert server.auth_attempts == [] and listing(server) == []


async def test_a_key_the_server_does_not_know_is_refused_with_what_to_install(server, target, source):
    stranger = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    error = await refused(replace(target, private_key=stranger), source)
    assert error.kind == "auth" and error.permanent
    assert "'acme'" in str(error) and "authorized_keys" in str(error) and "127.0.0.1" in str(error)
    assert listing(server) == []


async def test_password_authentication_works_and_a_wrong_password_is_auth_never_echoed(server, target, source):
    by_password = replace(target, private_key=None, password=PASSWORD)
    await upload(by_password, NAME, source)
    assert listing(server) == [NAME]
    error = await refused(replace(by_password, password="hunter2"), source)
    assert error.kind == "auth" and "password" in str(error) and "hunter2" not in str(error) + repr(error)


async def test_neither_password_nor_private_key_appears_in_any_log_line(server, target, source, caplog):
    caplog.set_level(logging.DEBUG)  # ours and asyncssh's, at their most verbose
    await upload(target, NAME, source)
    await upload(replace(target, private_key=None, password=PASSWORD), NAME, source)
    with pytest.raises(UploadError):
        await upload(replace(target, private_key=None, password="hunter2"), NAME, source)
    body = [line for line in (target.private_key or "").splitlines() if line and not line.startswith("-----")]
    assert "uploaded location=sftp://" in caplog.text
    assert PASSWORD not in caplog.text and "hunter2" not in caplog.text
    assert body and not [line for line in body if line in caplog.text]


def test_secrets_are_never_in_a_target_repr_or_str(target):
    shown = repr(replace(target, password=PASSWORD)) + str(replace(target, password=PASSWORD))
    assert PASSWORD not in shown and "PRIVATE KEY" not in shown and "acme@127.0.0.1" in shown


async def test_a_missing_directory_or_a_file_in_its_place_is_no_directory(server, target, source):
    error = await refused(replace(target, path="/nope"), source)
    assert error.kind == "no_directory" and error.permanent and "/nope" in str(error)
    (server.root / "afile").write_text("x")
    error = await refused(replace(target, path="/afile"), source)
    assert error.kind == "no_directory" and "not a directory" in str(error)


async def test_a_read_only_directory_is_a_permission_error_and_leaves_nothing(server, target, source):
    server.read_only("/upload")
    error = await refused(target, source)
    assert error.kind == "permission" and error.permanent
    assert "Permission denied writing to /upload" in str(error) and "'acme'" in str(error)
    server.read_only("/upload", False)
    assert listing(server) == []


async def test_a_full_disk_is_transient_says_so_at_once_and_frees_the_part(server, target, source):
    server.disk_full_after(100_000)
    error = await refused(target, source)
    assert error.kind == "disk_full" and not error.permanent and "disk is full" in str(error)
    assert listing(server) == []
    server.disk_full_after(None)
    await upload(target, NAME, source)
    assert listing(server) == [NAME]


async def test_a_server_that_is_down_is_unreachable_then_works_once_it_is_up(server, target, source):
    await server.stop()
    error = await refused(target, source)
    assert error.kind == "unreachable" and not error.permanent
    assert f"127.0.0.1:{server.port}" in str(error) and "connection refused" in str(error)
    await server.start()  # same port, same host key: the pinned key still matches
    await upload(target, NAME, source)
    assert listing(server) == [NAME]


async def test_a_server_that_never_answers_times_out_with_the_time_said(target, source):
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    tarpit = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        port = tarpit.sockets[0].getsockname()[1]
        error = await refused(replace(target, port=port), source, timeout=0.5)
    finally:
        release.set()
        tarpit.close()
        await tarpit.wait_closed()
    assert error.kind == "timeout" and not error.permanent and "timed out after 0.5 s" in str(error)


async def test_a_transfer_that_stalls_times_out(server, target, source):
    server.write_delay = 3
    error = await refused(target, source, timeout=0.5)
    assert error.kind == "timeout" and "stopped accepting data" in str(error)
    assert NAME not in listing(server)


async def test_probe_reports_its_steps_and_leaves_nothing_behind(server, target):
    steps = await probe(target)
    assert any(server.fingerprint in step for step in steps)
    assert any(step.startswith("wrote .invoicebot-probe-") for step in steps)
    assert steps[-1].startswith("removed .invoicebot-probe-")
    assert listing(server) == []
    with pytest.raises(UploadError) as caught:
        await probe(replace(target, path="/nope"))
    assert caught.value.kind == "no_directory"
    server.read_only("/upload")
    with pytest.raises(UploadError) as caught:
        await probe(target)
    assert caught.value.kind == "permission"


async def test_probe_without_a_pinned_key_offers_the_key_to_confirm(server, target):
    with pytest.raises(UploadError) as caught:
        await probe(replace(target, host_key=None))
    assert caught.value.kind == "host_key_unknown" and caught.value.offered_key == server.host_key_line


async def test_server_host_key_and_fingerprint_are_what_ssh_keygen_shows(server, tmp_path):
    line = await server_host_key("127.0.0.1", server.port)
    assert line == server.host_key_line
    blob = base64.b64decode(line.split()[1])
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert fingerprint(line) == expected == server.fingerprint
    if shutil.which("ssh-keygen"):
        (tmp_path / "key.pub").write_text(line + "\n")
        printed = subprocess.run(["ssh-keygen", "-lf", str(tmp_path / "key.pub")], capture_output=True, text=True,
                                 check=True).stdout
        assert printed.split()[1] == expected


def test_a_fingerprint_of_something_that_is_not_a_key_is_a_clear_error():
    with pytest.raises(InvalidInput, match="not an OpenSSH public key line"):
        fingerprint("ssh-ed25519 not-base64")


async def test_a_file_name_with_a_directory_part_is_refused(target, source):
    with pytest.raises(InvalidInput):
        await upload(target, "../etc/passwd", source)


# --- local directory (a mounted share) ---------------------------------------------------------------------


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """A directory nobody may write, also for root (which ignores permission bits): chattr +i when root."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(directory)], check=True)
    else:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)


async def test_a_local_upload_lands_complete_under_its_final_name(tmp_path, source):
    share = tmp_path / "share"
    share.mkdir()
    done = await upload(LocalTarget(share), NAME, source)
    assert done.location == (share / NAME).as_uri() and done.size == source.stat().st_size
    assert sorted(os.listdir(share)) == [NAME] and sha256(share / NAME) == sha256(source)
    source.write_bytes(b"<orders/>\n")
    await upload(LocalTarget(share), NAME, source)
    assert (share / NAME).read_bytes() == b"<orders/>\n" and sorted(os.listdir(share)) == [NAME]


async def test_a_local_target_reports_missing_read_only_and_full_like_sftp(tmp_path, source):
    share = tmp_path / "share"
    with pytest.raises(UploadError) as caught:
        await upload(LocalTarget(share), NAME, source)
    assert caught.value.kind == "no_directory" and caught.value.permanent and str(share) in str(caught.value)
    share.mkdir()
    with unwritable(share), pytest.raises(UploadError) as caught:
        await upload(LocalTarget(share), NAME, source)
    assert caught.value.kind == "permission" and caught.value.permanent
    (share / (NAME + ".part")).symlink_to("/dev/full")  # a real ENOSPC from the kernel on the first write
    with pytest.raises(UploadError) as caught:
        await upload(LocalTarget(share), NAME, source)
    assert caught.value.kind == "disk_full" and not caught.value.permanent
    assert sorted(os.listdir(share)) == []


async def test_a_local_probe_leaves_nothing_behind(tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    steps = await probe(LocalTarget(share))
    assert steps[-1].startswith("removed .invoicebot-probe-") and os.listdir(share) == []
    with unwritable(share), pytest.raises(UploadError) as caught:
        await probe(LocalTarget(share))
    assert caught.value.kind == "permission"


# --- processes: the server as a subprocess, an uploader killed with SIGKILL ------------------------------------

REPO = Path(__file__).resolve().parents[4]

UPLOADER = """
import asyncio, json, sys
from pathlib import Path
from invoicing.integrations.xml_export.destinations import SftpTarget, upload
spec = json.loads(Path(sys.argv[1]).read_text())
asyncio.run(upload(SftpTarget(**spec["target"]), spec["name"], Path(spec["source"])))
"""


async def wait_for(condition, seconds: float = 20) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_an_uploader_killed_mid_transfer_never_leaves_a_file_under_the_final_name(server, target, source,
                                                                                        tmp_path):
    server.write_delay = 0.05
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"target": target.__dict__, "name": NAME, "source": str(source)}))
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", UPLOADER, str(spec), cwd=REPO)
    try:
        await wait_for(lambda: server.bytes_written > 0)
        os.kill(child.pid, signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    assert listing(server) == [NAME + ".part"]
    server.write_delay = 0
    await upload(target, NAME, source)  # the retry: the same bytes under the same name, the part replaced
    assert listing(server) == [NAME] and sha256(server.root / "upload" / NAME) == sha256(source)


async def test_the_server_subprocess_serves_and_keeps_port_and_host_key_across_a_restart(tmp_path, client_key,
                                                                                         source):
    root = tmp_path / "root"
    (root / "upload").mkdir(parents=True)
    (tmp_path / "authorized").write_text(openssh_line(client_key) + "\n")
    async def serve(port: int = 0) -> ServerProcess:
        return await spawn_server(root, tmp_path / "authorized", tmp_path / "port", "--host-key",
                                  str(tmp_path / "host_key"), "--port", str(port))

    served = await serve()
    child, port, host_key = served.process, served.port, served.host_key_line
    target = SftpTarget("127.0.0.1", port, "acme", "/upload", host_key, client_key.export_private_key().decode(), None)
    try:
        await upload(target, NAME, source)
        child.kill()  # kill -9: down …
        child.wait()
        assert (await refused(target, source)).kind == "unreachable"
        restarted = await serve(port)  # … then up, same port and host key
        child = restarted.process
        assert restarted.host_key_line == host_key
        await upload(target, "second.xml", source)
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait()
    assert sorted(os.listdir(root / "upload")) == [NAME, "second.xml"]
