"""End-to-end check of the Cowrie harness: a real Cowrie on 127.0.0.1,
attacked by a bot-like paramiko client; its JSON log is read with plain json."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import FILES, SENSOR, UPLOAD

pytestmark = pytest.mark.e2e

def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def test_cowrie_logs_the_bot_attack(attacked_cowrie: Any) -> None:
    hp, result, events = attacked_cowrie.hp, attacked_cowrie.result, attacked_cowrie.events
    src_port = result["src_port"]
    assert isinstance(src_port, int) and src_port > 0
    assert hp.host == "127.0.0.1"
    assert hp.process is not None and hp.process.poll() is not None, "stop() must end Cowrie"

    connects = [
        e
        for e in events
        if e["eventid"] == "cowrie.session.connect"
        and e["src_ip"] == "127.0.0.1"
        and e["src_port"] == src_port
    ]
    assert len(connects) == 1, events
    session = connects[0]["session"]
    assert session == result["session"]
    assert connects[0]["dst_port"] == hp.port
    mine = [e for e in events if e.get("session") == session]
    assert all(e["sensor"] == SENSOR for e in mine)
    assert all(e["src_ip"] == "127.0.0.1" and e["src_port"] == src_port for e in mine)
    assert any(
        e["eventid"] == "cowrie.login.success"
        and e["username"] == result["username"]
        and e["password"] == result["password"]
        for e in mine
    )
    assert mine[-1]["eventid"] == "cowrie.session.closed"

    downloads = [e for e in mine if e["eventid"] == "cowrie.session.file_download"]
    assert sorted(e["shasum"] for e in downloads) == sorted(_sha256(c) for c in FILES.values())
    for name, content in FILES.items():
        (event,) = [e for e in downloads if e["shasum"] == _sha256(content)]
        assert event["destfile"] == f"/tmp/{name}"
        assert Path(event["outfile"]).name == _sha256(content)

    uploads = [e for e in mine if e["eventid"] == "cowrie.session.file_upload"]
    assert [(e["filename"], e["shasum"]) for e in uploads] == [
        (name, _sha256(content)) for name, content in UPLOAD.items()
    ]
    assert Path(uploads[0]["outfile"]).name == _sha256(UPLOAD["cc-upload-1.sh"])

    for content in [*FILES.values(), *UPLOAD.values()]:
        stored = hp.downloads_dir / _sha256(content)
        assert stored.read_bytes() == content
