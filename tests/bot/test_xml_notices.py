"""The XML export's channel messages: the file and its skipped orders, failures, blocks with Trust, all escaped."""

from __future__ import annotations

import json

from commands.clicks import action_id
from commands.notifications import notice_reply
from commands.xml_notices import TRUST
from models import NoticeKind


def _text(reply) -> str:
    return json.dumps([reply.text, *reply.blocks], ensure_ascii=False)


def test_an_exported_file_names_orders_location_and_skipped_reasons_escaped():
    reply = notice_reply(NoticeKind.XML_EXPORTED, {
        "company": "zeta", "orders": 42, "location": "sftp://host:22/upload/acme-zeta-000017.xml", "files": 1,
        "content": "orders", "revisions": 2,
        "skipped": [{"ref": "<!channel>", "reason": "on hold"}], "skipped_by_reason": {"on hold": 1}})
    assert reply.text == "XML export zeta: 42 orders → sftp://host:22/upload/acme-zeta-000017.xml"
    shown = _text(reply)
    assert "Skipped 1 order(s)" in shown and "1 × on hold" in shown and "2 of them re-exported" in shown
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert not reply.ephemeral


def test_a_blocked_host_key_notice_offers_the_trust_button_and_others_do_not():
    blocked = notice_reply(NoticeKind.XML_BLOCKED, {
        "company": "zeta", "file_name": "a-zeta-000001.xml", "kind": "host_key_changed", "error": "key <changed>",
        "offered_key": "ssh-ed25519 AAAA", "fingerprint": "SHA256:abc", "integration_id": 7})
    [button] = [e for b in blocked.blocks if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == action_id(TRUST) and button["value"] == "7|ssh-ed25519 AAAA"
    assert "SHA256:abc" in _text(blocked) and "key &lt;changed&gt;" in _text(blocked)
    auth = notice_reply(NoticeKind.XML_BLOCKED, {"company": "zeta", "file_name": "f.xml", "kind": "auth",
                                                 "error": "refused", "offered_key": None, "fingerprint": None})
    assert not [b for b in auth.blocks if b["type"] == "actions"]


def test_failing_gave_up_and_recovered_read_as_what_happened():
    failing = notice_reply(NoticeKind.XML_FAILING, {"company": "zeta", "file_name": "f.xml", "error": "down",
                                                    "retry_in": 30, "gave_up": False, "attempts": 1})
    assert "failed, retrying (in 30 s): down" in failing.text
    gave_up = notice_reply(NoticeKind.XML_FAILING, {"company": "zeta", "file_name": "f.xml", "error": "down",
                                                    "gave_up": True, "attempts": 8})
    assert "gave up uploading f.xml after 8 attempts" in gave_up.text
    recovered = notice_reply(NoticeKind.XML_RECOVERED, {"company": "zeta", "file_name": "f.xml", "attempts": 3,
                                                        "location": "file:///share/f.xml"})
    assert recovered.text == "XML export zeta: f.xml uploaded → file:///share/f.xml (after 3 attempts)"
