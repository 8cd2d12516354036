"""Benchmark of composing the invoice e-mail: the message object and generator against direct bytes.

Run: ``.venv/bin/python benchmarks/compose.py [--rounds 9] [--messages 300]``

What is compared (same process, same inputs, rounds alternating between the two paths,
median of the rounds), as CPU time per message (``time.process_time``):

* **old**: ``flatten(compose_invoice_email(...))`` — an ``EmailMessage`` tree, its
  headers parsed, then ``email.generator`` (what the render worker did before);
* **new**: ``mail_bytes.flat_invoice_email(...)`` — the same bytes written directly.

Both for the 20-line invoice of ``benchmarks/render.py`` (a Polish seller, so ``From`` and
``Subject`` carry encoded-words) with its real PDF, and without a PDF (``b""``): the
second figure is the cost of composing itself, without the base64 of the attachment,
which both paths pay alike. Target: new ≤ 0.3 ms per message without the PDF.
The outputs are checked to be byte-identical before timing.

The CPU is shared on CI and developer machines: under load the figures move by 2×;
compare the two paths of one run, not figures of different runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.render import build_document
from invoicing.delivery.mail import FlatMessage, compose_invoice_email, flatten, message_id_for
from invoicing.delivery.mail_bytes import flat_invoice_email
from invoicing.delivery.pdf import render_invoice_pdf

MAIL_FROM = "invoices@lodzdruk.pl"
TO = "buchhaltung@mueller-soehne.de"


def cpu_ms_per_message(compose: Callable[[], FlatMessage], messages: int) -> float:
    started = time.process_time()
    for _ in range(messages):
        compose()
    return (time.process_time() - started) * 1000 / messages


def compare(label: str, pdf: bytes, rounds: int, messages: int) -> float:
    """Print old and new CPU per message for ``pdf``; return the new path's figure."""
    doc = build_document(20)
    arguments = {"mail_from": MAIL_FROM, "to": TO, "message_id": message_id_for(3, 20, "lodzdruk.pl")}

    def old() -> FlatMessage:
        return flatten(compose_invoice_email(doc, pdf, **arguments))

    def new() -> FlatMessage:
        return flat_invoice_email(doc, pdf, **arguments)

    assert old() == new(), "the two paths must give the same FlatMessage"
    timings: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(rounds):
        for name, compose in (("old", old), ("new", new)):
            timings[name].append(cpu_ms_per_message(compose, messages))
    old_ms, new_ms = statistics.median(timings["old"]), statistics.median(timings["new"])
    print(f"{label}: old {old_ms:6.3f} ms   new {new_ms:6.3f} ms   ×{old_ms / new_ms:.1f} less CPU")
    return new_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds per figure (median reported)")
    parser.add_argument("--messages", type=int, default=300, help="messages composed per round")
    args = parser.parse_args()
    pdf = render_invoice_pdf(build_document(20))
    compare(f"20-line invoice, {len(pdf) // 1024} KB PDF", pdf, args.rounds, args.messages)
    bare = compare("20-line invoice, no PDF     ", b"", args.rounds, args.messages)
    ok = bare <= 0.3
    print(f"new path without the PDF: {bare:.3f} ms  (target ≤ 0.3 ms)  {'target met' if ok else 'target MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
