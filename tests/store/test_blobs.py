import hashlib
import os
import stat
from pathlib import Path

import pytest

from cleancenter.store.blobs import BlobStore, BlobTooLarge


def test_put_bytes_is_content_addressed_read_only_and_stored_once(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    data = b"harmless sample\x00\xff"
    d1 = store.put_bytes(data)
    d2 = store.put_bytes(data)
    sha = hashlib.sha256(data).hexdigest()
    assert d1 == d2
    assert (d1.sha256, d1.md5, d1.sha1, d1.size) == (
        sha, hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(), len(data))
    path = tmp_path / "blobs" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == data
    mode = stat.S_IMODE(path.stat().st_mode)
    assert mode == 0o400
    assert not mode & 0o111
    assert [p.name for p in store.iter_paths()] == [sha]


def test_put_file_streams_and_matches_put_bytes(tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    store = BlobStore(tmp_path / "blobs")
    d = store.put_file(src)
    assert store.read(d.sha256) == src.read_bytes()
    assert d.size == src.stat().st_size


def test_failed_write_leaves_no_file_behind(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    writer = store.writer(limit=10)
    writer.write(b"12345")
    with pytest.raises(BlobTooLarge):
        writer.write(b"678901")
    writer.abort()
    assert list(store.iter_paths()) == []

    class Exploding:
        def __init__(self) -> None:
            self.n = 0

        def open(self, mode: str) -> "Exploding":
            return self

        def __enter__(self) -> "Exploding":
            return self

        def __exit__(self, *a: object) -> None:
            return None

        def read(self, size: int) -> bytes:
            self.n += 1
            if self.n > 2:
                raise OSError(5, "Input/output error")
            return b"x" * size

    with pytest.raises(OSError):
        store.put_file(Exploding())  # type: ignore[arg-type]
    assert list(store.iter_paths()) == []


def test_path_for_rejects_non_hashes(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    from cleancenter.store.blobs import BlobError

    for bad in ("../../etc/passwd", "ABC", "0" * 63, "g" * 64):
        with pytest.raises(BlobError):
            store.path_for(bad)


def test_check_finds_mismatch_writable_stray_and_temp(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    good = store.put_bytes(b"good")
    bad = store.put_bytes(b"will be damaged")
    bad_path = store.path_for(bad.sha256)
    os.chmod(bad_path, 0o600)
    bad_path.write_bytes(b"damaged")
    stray = tmp_path / "blobs" / "ab" / "notahash"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"?")
    temp = tmp_path / "blobs" / ".tmp-abc"
    temp.write_bytes(b"half")
    kinds = {p.name: sorted(x.kind for x in store.check(p)) for p in store.iter_paths()}
    assert kinds[good.sha256] == []
    assert kinds[bad.sha256] == ["mismatch", "writable"]
    assert kinds["notahash"] == ["misplaced"]
    assert kinds[".tmp-abc"] == ["stale-temp"]
