"""One real Cowrie honeypot for the whole e2e session, attacked once by a bot imitation.

Set-up is shared: the harness test checks what Cowrie logged, the ingest test checks
what cleancenter makes of it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.cowrie_honeypot import CowrieHoneypot, attack, start_cowrie

SENSOR = "cc-test-sensor"
FILES = {
    "cc-bot-1.sh": b"harmless-bot-imitation-1\n",
    # binary: NUL, 0xff, quote, backslash, CR/LF
    "cc-bot-2.bin": b"\x00harmless\xffbot\x00imitation-2 ' \\ \r\n\x7f\x80",
}
UPLOAD = {"cc-upload-1.sh": b"#!/bin/sh\necho harmless-sftp-upload-1\n"}


@dataclass
class Attacked:
    hp: CowrieHoneypot
    result: dict[str, Any]
    events: list[dict[str, Any]]


@pytest.fixture(scope="session")
def attacked_cowrie(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Attacked]:
    """Start Cowrie on 127.0.0.1, attack it once, stop it; the log and downloads stay."""
    hp = start_cowrie(tmp_path_factory.mktemp("cowrie"), sensor=SENSOR)
    try:
        result = attack(hp, FILES, UPLOAD)
        hp.stop()
        hp.cleanup()  # moves the honeypot's folder into the test's tmp dir
        with open(hp.log_path, encoding="utf-8") as f:
            events = [json.loads(line) for line in f if line.strip()]
        yield Attacked(hp, result, events)
    finally:
        hp.stop()
