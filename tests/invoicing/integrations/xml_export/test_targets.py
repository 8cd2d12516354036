"""What ops type as a destination: sftp://user@host:port/path or a local directory; anything else is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from invoicing.errors import InvalidInput
from invoicing.integrations.xml_export.destinations import parse_destination


@pytest.mark.parametrize(("text", "expected"), [
    ("sftp://acme@files.example.com:2222/upload", ("acme", "files.example.com", 2222, "/upload")),
    ("sftp://acme@files.example.com/upload/", ("acme", "files.example.com", 22, "/upload")),
    ("SFTP://files.example.com", ("", "files.example.com", 22, "/")),
    ("sftp://ops.team@10.0.0.7:22/in%20box", ("ops.team", "10.0.0.7", 22, "/in box")),
    ("sftp://acme@[2001:db8::1]:2200/x", ("acme", "2001:db8::1", 2200, "/x")),
    ("  sftp://acme@host/x  ", ("acme", "host", 22, "/x")),
])
def test_an_sftp_url_gives_user_host_port_and_directory(text, expected):
    assert parse_destination(text) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("/mnt/share/exports", Path("/mnt/share/exports")),
    ("/mnt/share/exports/", Path("/mnt/share/exports")),
    ("file:///srv/drop%20box", Path("/srv/drop box")),
    ("file://localhost/srv/x", Path("/srv/x")),
])
def test_an_absolute_path_or_file_url_is_a_local_directory(text, expected):
    assert parse_destination(text) == expected


@pytest.mark.parametrize(("text", "field", "words"), [
    ("", "destination", "sftp://"),
    ("ftp://host/x", "destination", "neither"),
    ("relative/dir", "destination", "neither"),
    ("sftp://acme:secret@host/x", "destination", "password"),
    ("sftp://acme@/x", "host", "no host"),
    ("sftp://acme@bad_host!/x", "host", "not a valid host"),
    ("sftp://acme@host:0/x", "port", "1 to 65535"),
    ("sftp://acme@host:99999/x", "port", "1 to 65535"),
    ("sftp://acme@host:abc/x", "port", "number"),
    ("sftp://acme@host/x?y=1", "destination", "query"),
    ("sftp://acme@host/a/../etc", "path", ".."),
    ("/a/\n/b", "destination", "control character"),
    ("file://otherhost/x", "destination", "this machine"),
    ("sftp://acme@" + "a" * 254 + "/x", "host", "at most 253"),
    ("sftp://acme@host/" + "p" * 1001, "path", "at most 1000"),
])
def test_anything_else_is_a_clear_error_naming_the_field(text, field, words):
    with pytest.raises(InvalidInput) as refused:
        parse_destination(text)
    assert refused.value.field == field and words in refused.value.reason
    assert "secret" not in refused.value.message


@given(st.text(max_size=300))
def test_parsing_never_fails_with_anything_but_invalid_input(text):
    try:
        result = parse_destination(text)
    except InvalidInput:
        return
    if isinstance(result, Path):
        assert result.is_absolute()
    else:
        user, host, port, path = result
        assert host and 1 <= port <= 65535 and path.startswith("/") and "\n" not in path
