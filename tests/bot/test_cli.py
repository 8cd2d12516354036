"""The ``invoicebot`` command line, run as a real subprocess."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from pypdf import PdfReader


def invoicebot(*args: str, data_dir: Path, database_url: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "SMTP_", "SLACK_"))}
    env.update(INVOICEBOT_DATA_DIR=str(data_dir), DATABASE_URL=database_url, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env,
                          cwd=data_dir, timeout=120)


@pytest.mark.parametrize("command", [[], ["demo"], ["migrate"], ["tenant", "create"], ["run"]])
def test_every_command_has_help(tmp_path, command):
    result = invoicebot(*command, "--help", data_dir=tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: invoicebot")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run"], "the following arguments are required: company"),
        (["tenant", "create", "acme", "--slack-team", "X123"], "'X123' is not a Slack team id (they start with T)"),
        (["tenant", "create", "acme", "--slack-team", "T1", "--plan", "gold"], "invalid choice: 'gold'"),
        (["run", "acme"], "No tenant yet. Create one with `invoicebot tenant create NAME --slack-team T…`."),
    ],
)
def test_bad_input_exits_2_with_a_one_line_reason(tmp_path, args, message):
    result = invoicebot(*args, data_dir=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_bad_setting_exits_2_naming_it(tmp_path):
    result = invoicebot("migrate", data_dir=tmp_path, database_url="mysql://x")
    assert result.returncode == 2
    assert "database_url" in result.stderr and "postgres://" in result.stderr


def test_demo_runs_twice_without_duplicate_seed_or_invoices(tmp_path):
    first = invoicebot("demo", data_dir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Seeded demo tenant inkwell" in first.stdout
    for company in ("giftory", "druckhaus", "maplewood"):
        assert company in first.stdout
    assert "INK-000001" in first.stdout and "3 invoice(s) issued" in first.stdout
    assert "on hold" in first.stdout and "no price for SKU PHONE-CASE-14" in first.stdout
    pdfs = sorted((tmp_path / "invoices").glob("*.pdf"))
    emails = sorted((tmp_path / "outbox").glob("*.eml"))
    assert [p.name for p in pdfs] == ["INK-000001.pdf", "INK-000002.pdf", "INK-000003.pdf"]
    assert len(emails) == 3 and all(str(p) in first.stdout for p in pdfs)
    text = PdfReader(pdfs[1]).pages[0].extract_text()
    assert "Müller & Söhne Druckhaus GmbH" in text and "INK-000002" in text

    second = invoicebot("demo", data_dir=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "already seeded" in second.stdout and "0 invoice(s) issued" in second.stdout

    with sqlite3.connect(tmp_path / "invoicebot.db") as conn:
        assert conn.execute("select count(*) from tenant").fetchone() == (1,)
        assert conn.execute('select count(*) from "order"').fetchone() == (300,)
        assert conn.execute("select count(*) from invoice").fetchone() == (3,)
        assert conn.execute("select count(distinct invoice_id), count(*) from \"order\" where invoice_id is not null"
                            ).fetchone()[0] == 3


def test_demo_data_dir_option_places_the_database(tmp_path):
    result = invoicebot("demo", "--data-dir", str(tmp_path / "elsewhere"), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "elsewhere" / "invoicebot.db").exists()


def test_migrate_tenant_create_and_run_against_the_configured_database(tmp_path, db_url):
    assert invoicebot("migrate", data_dir=tmp_path, database_url=db_url.url).returncode == 0
    created = invoicebot("tenant", "create", "inkwell", "--slack-team", "T0123", data_dir=tmp_path,
                         database_url=db_url.url)
    assert created.returncode == 0, created.stderr
    assert "Tenant inkwell created (plan oms, Slack team T0123)" in created.stdout
    again = invoicebot("tenant", "create", "inkwell", "--slack-team", "T0456", data_dir=tmp_path,
                       database_url=db_url.url)
    assert again.returncode == 2 and "already exists" in again.stderr
    run = invoicebot("run", "acme", "--dry-run", data_dir=tmp_path, database_url=db_url.url)
    assert run.returncode == 2 and "No company 'acme' in inkwell" in run.stderr
