"""Importing InvoiceBot has no side effects: nothing is created, connected or read at import time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_every_module_creates_nothing_in_the_working_directory(tmp_path: Path) -> None:
    modules = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for package in ("models", "invoicing", "commands", "bot")
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts and path.name != "__main__.py"
    )
    script = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    subprocess.run([sys.executable, "-c", script, *modules], cwd=tmp_path, check=True,
                   env={"PATH": "", "PYTHONPATH": str(ROOT), "INVOICEBOT_DATA_DIR": ""}, timeout=120)

    assert list(tmp_path.iterdir()) == []
