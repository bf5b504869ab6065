"""What the bundle tells the cleaner to look for must not make it act on innocent things."""

from __future__ import annotations

from cleancenter.definitions.build import bot_file_names, c2_worthy


def test_only_global_addresses_that_are_no_public_service_are_c2() -> None:
    assert c2_worthy("203.0.113.7") is False  # documentation range
    assert c2_worthy("192.168.1.1") is False and c2_worthy("10.0.0.0/8") is False
    assert c2_worthy("127.0.0.1") is False and c2_worthy("224.0.0.1") is False
    assert c2_worthy("8.8.8.8") is False and c2_worthy("1.1.1.1") is False
    assert c2_worthy("2001:4860:4860::8888") is False
    assert c2_worthy("45.9.148.99") is True and c2_worthy("45.9.148.0/24") is True
    assert c2_worthy("2a03:b0c0:3:d0::1") is True
    assert c2_worthy("not an address") is False


def test_file_names_are_program_base_names_only() -> None:
    names = ["launchers/MSSECSVC.EXE", "C:\\Users\\x\\Temp\\payload.dll", "/tmp/bins.sh",
             "x86", "a.sh", "readme", "evil\x1b[2J.exe", "Invoice 2026.pdf.exe"]
    assert bot_file_names(names) == ["bins.sh", "mssecsvc.exe", "payload.dll"]
