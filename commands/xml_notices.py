"""What the company's channel sees from the XML export: a file exported, its upload failing, recovered, blocked.

Payloads are the plain facts queued by ``invoicing.integrations.xml_export`` (``run`` and
``uploads``); every value from users or the feed (file names, refs, reasons, server
messages) goes through the escaping builders. A blocked notice for an unknown or changed
host key carries the *Trust this key* button (``TRUST``; value ``<integration id>|<key
line>``, checked again on click: admins only, and only if the server still offers it).
"""

from __future__ import annotations

from typing import Any

from commands.clicks import action_id
from commands.replies import Mrkdwn, Reply, actions, button, context, md, message, section, shorten
from models import NoticeKind

TRUST = "xml_trust_key"
KINDS = frozenset({NoticeKind.XML_EXPORTED, NoticeKind.XML_FAILING, NoticeKind.XML_RECOVERED,
                   NoticeKind.XML_BLOCKED})
ERROR_CHARS = 1200


def trust_button(integration_id: int, key_line: str, fingerprint: str) -> dict[str, Any]:
    """The admin's confirmation that ``fingerprint`` is the server's real key (then it is pinned)."""
    return actions(button("Trust this key", action_id(TRUST), f"{integration_id}|{key_line}", style="primary",
                          confirm=("Trust this host key?",
                                   f"Only if the server's owner confirms its fingerprint is {fingerprint}. "
                                   "Uploads then go to the server that presents this key.", "Trust")),
                   block_id=f"xml-trust:{integration_id}")


def skipped_lines(payload: dict[str, Any]) -> str:
    reasons = payload.get("skipped_by_reason") or {}
    if not reasons:
        return ""
    total = sum(int(v) for v in reasons.values())
    lines = [md("• {} × {}", int(count), shorten(str(reason), 200)) for reason, count in list(reasons.items())[:10]]
    refs = ", ".join(str(s.get("ref", "")) for s in (payload.get("skipped") or [])[:15])
    return md("*Skipped {} order(s):*\n", total) + Mrkdwn("\n").join(lines) + (md("\n_{}_", refs) if refs else "")


def xml_notice_reply(kind: NoticeKind, payload: dict[str, Any]) -> Reply:
    """The channel message of one XML export notice."""
    company = str(payload.get("company", ""))
    name = str(payload.get("file_name", ""))
    if kind == NoticeKind.XML_EXPORTED:
        return exported_reply(payload)
    error = shorten(" ".join(str(payload.get("error", "")).split()), ERROR_CHARS)
    if kind == NoticeKind.XML_RECOVERED:
        text = md("XML export {}: {} uploaded → {} (after {} attempts)", company, name, payload.get("location", ""),
                  payload.get("attempts", ""))
        return message(text, section(md(":white_check_mark: {}", text)), ephemeral=False)
    if kind == NoticeKind.XML_FAILING:
        if payload.get("gave_up"):
            text = md("XML export {}: gave up uploading {} after {} attempts: {}", company, name,
                      payload.get("attempts", ""), error)
            hint = md("Fix the server, then `/invoicing xml {} test`: when it passes, the file goes again (so does any "
                      "change of the destination).",
                      company)
        else:
            text = md("XML export {}: uploading {} failed, retrying (in {} s): {}", company, name,
                      payload.get("retry_in", ""), error)
            hint = md("Later files of {} wait until this one arrives. You will hear when it does.", company)
        return message(text, section(md(":warning: {}", text)), context(hint), ephemeral=False)
    blocks = [section(md(":no_entry: *XML export {} is blocked* ({}): {} was not uploaded.\n{}", company,
                         payload.get("kind", ""), name, error))]
    offered, print_ = payload.get("offered_key"), payload.get("fingerprint")
    if offered and print_:
        blocks.append(section(md("The server offers the host key `{}`. Compare it with what the server's owner "
                                 "reads from `ssh-keygen -lf` on the server before trusting it.", print_)))
        blocks.append(trust_button(int(payload.get("integration_id") or 0), str(offered), str(print_)))
    else:
        blocks.append(context(md("Fix it, then change the settings (`/invoicing xml {} set …`) or run "
                                 "`/invoicing xml {} test`: when it passes, the files are uploaded again.",
                                 company, company)))
    return message(md("XML export {} is blocked: {}", company, error), *blocks, ephemeral=False)


def exported_reply(payload: dict[str, Any], *, dry_run: bool = False) -> Reply:
    """"XML export zeta: 42 orders → sftp://host/path/acme-zeta-000017.xml" with the skipped orders and why."""
    company = str(payload.get("company", ""))
    location = str(payload.get("location") or payload.get("file_name") or "")
    files = int(payload.get("files") or 1)
    if payload.get("content") == "invoices":
        what = f"{files} document(s)"
        where = location if files == 1 else md("{} … {}", location, payload.get("last_file_name", ""))
    else:
        what = f"{int(payload.get('orders') or 0)} orders"
        where = location
    text = md("{}XML export {}: {} → {}", "Dry run: " if dry_run else "", company, what, where)
    blocks = [section(md(":outbox_tray: {}", text))]
    revisions = int(payload.get("revisions") or 0)
    if revisions:
        blocks.append(context(md("{} of them re-exported as revisions (changed since their last export).",
                                 revisions)))
    skipped = skipped_lines(payload)
    if skipped:
        blocks.append(section(skipped))
    if dry_run:
        blocks.append(context("Dry run: nothing was written and no sequence number was taken."))
    else:
        blocks.append(context("Queued for upload; a failure is reported here."))
    return message(text, *blocks, ephemeral=dry_run)
