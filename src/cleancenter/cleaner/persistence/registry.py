"""One registry view, two backends: an offline hive file (regipy) and the live registry
(``winreg``, Windows only).

The Windows checks are written against `RegistryView` alone, so they run here on real
hive files and unchanged on a live Windows. Paths are relative to the view's root
(``Microsoft\\Windows\\CurrentVersion\\Run`` in a SOFTWARE view), without a leading
backslash.

The hive backend walks keys with regipy but decodes values itself, straight from the
file's bytes: regipy 6.5 reads ``data_size`` bytes even for values stored inline in the
record (size flag 0x80000000), i.e. everything up to the end of the file, once per
DWORD; on the 11 MB test SYSTEM hive that made reading the services take 5 s instead
of well under one.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from construct import ConstructError  # type: ignore[import-untyped,unused-ignore]
from regipy.exceptions import RegipyException
from regipy.registry import RegistryHive

RegData = str | int | bytes | list[str]
T = TypeVar("T")

TYPE_NAMES = {
    0: "REG_NONE", 1: "REG_SZ", 2: "REG_EXPAND_SZ", 3: "REG_BINARY", 4: "REG_DWORD",
    5: "REG_DWORD_BIG_ENDIAN", 6: "REG_LINK", 7: "REG_MULTI_SZ", 8: "REG_RESOURCE_LIST",
    9: "REG_FULL_RESOURCE_DESCRIPTOR", 10: "REG_RESOURCE_REQUIREMENTS_LIST", 11: "REG_QWORD",
}
_HBIN_START = 4096 + 4  # cell offsets count from the first hive bin; +4 skips the cell size
_BIG_DATA_LIMIT = 0x3FD8  # larger values are split into "db" segments (hive 1.4+)
_MAX_VALUES = 0x10000  # a value count above this is damage, not data
# what a damaged hive makes regipy and this module raise while reading
_PARSE_ERRORS = (RegipyException, ConstructError, ValueError, IndexError, struct.error,
                 OverflowError, EOFError, StopIteration, UnicodeError, AttributeError)


class RegistryError(Exception):
    """A hive or key could not be read; the message names the hive and what is wrong."""


@dataclass(frozen=True)
class RegValue:
    name: str  # "" is the key's default value
    type: str  # REG_SZ, REG_DWORD...
    data: RegData


class RegistryKey(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def path(self) -> str: ...

    def values(self) -> list[RegValue]: ...

    def subkeys(self) -> list[RegistryKey]: ...

    def subkey(self, name: str) -> RegistryKey | None: ...


class RegistryView(Protocol):
    @property
    def source(self) -> str:
        """What the view reads (a hive file, or ``live HKLM\\SOFTWARE``), for messages."""
        ...

    def open_key(self, path: str) -> RegistryKey | None:
        """The key at ``path`` (case-insensitive), None if it does not exist."""
        ...


def value_of(key: RegistryKey, name: str) -> RegData | None:
    """The data of value ``name`` (case-insensitive, as Windows looks it up), or None."""
    wanted = name.lower()
    for value in key.values():
        if value.name.lower() == wanted:
            return value.data
    return None


def _join(path: str, name: str) -> str:
    return f"{path}\\{name}" if path else name


def decode_value(type_code: int, data: bytes) -> RegData:
    """Registry value bytes as Python data (strings cut at their terminator)."""
    if type_code in (1, 2, 6):
        return _string(data).split("\x00", 1)[0]
    if type_code == 7:
        text = data[: len(data) & ~1].decode("utf-16-le", errors="replace")
        return [item for item in text.split("\x00") if item]
    if type_code == 4:
        return int.from_bytes(data[:4].ljust(4, b"\0"), "little")
    if type_code == 5:
        return int.from_bytes(data[:4].ljust(4, b"\0"), "big")
    if type_code == 11:
        return int.from_bytes(data[:8].ljust(8, b"\0"), "little")
    return data


def _string(data: bytes) -> str:
    """UTF-16 as Windows writes it; some programs store 8-bit text (as regipy, fall back)."""
    try:
        return data.decode("utf-16-le")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data[: len(data) & ~1].decode("utf-16-le", errors="replace")


class _Damaged(Exception):
    """Raised inside the hive reader; turned into a `RegistryError` with the key path."""


class HiveKey:
    """A key of an offline hive (wraps regipy's NK record)."""

    def __init__(self, view: HiveRegistry, record: Any, path: str) -> None:
        self._view = view
        self._record = record
        self.path = path
        self.name: str = record.name

    def values(self) -> list[RegValue]:
        return self._view.guard(self.path, "read its values",
                                lambda: self._view.read_values(self._record))

    def _children(self) -> Iterator[Any]:
        if self._record.subkey_count:
            yield from self._record.iter_subkeys()

    def subkeys(self) -> list[RegistryKey]:
        records = self._view.guard(self.path, "list its subkeys", lambda: list(self._children()))
        return [HiveKey(self._view, record, _join(self.path, record.name)) for record in records]

    def subkey(self, name: str) -> RegistryKey | None:
        wanted = name.lower()

        def find() -> Any:
            return next((r for r in self._children() if r.name.lower() == wanted), None)

        record = self._view.guard(self.path, f"find subkey {name}", find)
        if record is None:
            return None
        return HiveKey(self._view, record, _join(self.path, record.name))


class HiveRegistry:
    """An offline hive file (SOFTWARE, SYSTEM, NTUSER.DAT...) read with regipy.

    ``prefix`` names the key the file starts at when it is a partial export (a file
    whose root is ``HKCU\\Software`` is opened with prefix ``Software``, so the checks
    can ask for ``Software\\Microsoft\\...`` as in a whole NTUSER.DAT).
    """

    def __init__(self, path: Path, *, prefix: str = "") -> None:
        self.path = path
        self.source = str(path)
        self.prefix = prefix.strip("\\")
        try:
            self._data = path.read_bytes()
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read the hive file: "
                                f"{exc.strerror or exc}") from exc
        if self._data[:4] != b"regf":
            raise RegistryError(f"{path}: not a registry hive (no 'regf' signature)")
        try:
            hive = RegistryHive(str(path))  # type: ignore[no-untyped-call,unused-ignore]
            self.root_name: str = hive.root.name
            self.header_name: str = str(hive.name or "")
        except OSError as exc:
            raise RegistryError(f"{path}: cannot read the hive file: "
                                f"{exc.strerror or exc}") from exc
        except _PARSE_ERRORS as exc:
            raise RegistryError(f"{path}: the hive is damaged, its header or root key "
                                f"cannot be parsed ({type(exc).__name__}: "
                                f"{_short(exc)})") from exc
        self._hive = hive
        self._root = HiveKey(self, hive.root, self.prefix)  # paths keep the prefix

    def guard(self, path: str, doing: str, action: Callable[[], T]) -> T:
        """Run ``action``; a parse failure becomes a `RegistryError` naming file and key."""
        try:
            return action()
        except (_Damaged, *_PARSE_ERRORS) as exc:
            shown = printable(path) or "the root key"
            raise RegistryError(f"{self.source}: key {shown}: cannot {doing}, the hive is "
                                f"damaged ({_short(exc)})") from exc

    def root_subkey_names(self) -> list[str]:
        return [key.name for key in self._root.subkeys()]

    def open_key(self, path: str) -> RegistryKey | None:
        parts = [part for part in path.split("\\") if part]
        if self.prefix:
            head = [part for part in self.prefix.split("\\") if part]
            if [p.lower() for p in parts[: len(head)]] != [h.lower() for h in head]:
                return None
            parts = parts[len(head):]
        key: RegistryKey | None = self._root
        for part in parts:
            if key is None:
                return None
            key = key.subkey(part)
        return key

    # -- value decoding, straight from the bytes -----------------------------------------

    def read_values(self, record: Any) -> list[RegValue]:
        count = int(record.values_count)
        if not count:
            return []
        data = self._data
        list_at = _HBIN_START + int(record.header.values_list_offset)
        if count > _MAX_VALUES or list_at + 4 * count > len(data):
            raise _Damaged(f"its list of {count} values at offset {list_at:#x} lies outside "
                           f"the {len(data)}-byte file")
        values = []
        for index in range(count):
            (record_offset,) = struct.unpack_from("<I", data, list_at + 4 * index)
            at = _HBIN_START + record_offset
            if at + 20 > len(data) or data[at:at + 2] != b"vk":
                raise _Damaged(f"value {index + 1} of {count} points to offset {at:#x}, "
                               f"which holds no value record")
            name_size, size, offset, type_code, flags = struct.unpack_from("<HIIIH", data, at + 2)
            raw_name = data[at + 20:at + 20 + name_size]
            name = raw_name.decode("latin-1") if flags & 1 else \
                raw_name.decode("utf-16-le", errors="replace")
            payload = self._payload(size, offset)
            values.append(RegValue(name, TYPE_NAMES.get(type_code, f"REG_TYPE_{type_code:#x}"),
                                   decode_value(type_code, payload)))
        return values

    def _payload(self, size: int, offset: int) -> bytes:
        data = self._data
        length = size & 0x7FFFFFFF
        if size & 0x80000000:  # up to 4 bytes kept in the offset field itself
            return struct.pack("<I", offset)[:min(length, 4)]
        if not length:
            return b""
        at = _HBIN_START + offset
        if length > _BIG_DATA_LIMIT and data[at:at + 2] == b"db":
            return self._big_data(at, length)
        if at + length > len(data):
            raise _Damaged(f"value data of {length} bytes at offset {at:#x} runs past the "
                           f"end of the file")
        return data[at:at + length]

    def _big_data(self, at: int, length: int) -> bytes:
        data = self._data
        segments, list_offset = struct.unpack_from("<HI", data, at + 2)
        list_at = _HBIN_START + list_offset
        if list_at + 4 * segments > len(data):
            raise _Damaged(f"big value segment list at offset {list_at:#x} lies outside the file")
        parts: list[bytes] = []
        left = length
        for index in range(segments):
            if left <= 0:
                break
            (segment,) = struct.unpack_from("<I", data, list_at + 4 * index)
            start = _HBIN_START + segment
            if start >= len(data):
                raise _Damaged(f"big value segment at offset {start:#x} lies outside the file")
            chunk = data[start:start + min(_BIG_DATA_LIMIT, left)]
            parts.append(chunk)
            left -= len(chunk)
        return b"".join(parts)


def printable(text: str, limit: int = 120) -> str:
    """``text`` fit for a message: a damaged hive yields key names of binary garbage."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text)
    return shown if len(shown) <= limit else shown[:limit - 3] + "..."


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


# -- live registry (Windows only) --------------------------------------------------------

_HKEYS = ("HKEY_LOCAL_MACHINE", "HKEY_USERS", "HKEY_CURRENT_USER")


class LiveKey:
    """A key of the running registry; opened anew for each read (handles never leak)."""

    def __init__(self, view: LiveRegistry, path: str) -> None:
        self._view = view
        self.path = path
        self.name = path.rsplit("\\", 1)[-1]

    def values(self) -> list[RegValue]:
        if sys.platform != "win32":
            raise RegistryError("the live registry exists only on Windows")
        import winreg

        result = []
        try:
            with self._view.handle(self.path) as handle:
                for index in range(winreg.QueryInfoKey(handle)[1]):
                    name, data, type_code = winreg.EnumValue(handle, index)
                    if data is None:
                        data = b""
                    result.append(RegValue(name, TYPE_NAMES.get(type_code, str(type_code)),
                                           data))
        except OSError as exc:
            raise RegistryError(f"{self._view.source}\\{self.path}: {exc.strerror or exc}") \
                from exc
        return result

    def subkeys(self) -> list[RegistryKey]:
        if sys.platform != "win32":
            raise RegistryError("the live registry exists only on Windows")
        import winreg

        try:
            with self._view.handle(self.path) as handle:
                names = [winreg.EnumKey(handle, i)
                         for i in range(winreg.QueryInfoKey(handle)[0])]
        except OSError as exc:
            raise RegistryError(f"{self._view.source}\\{self.path}: {exc.strerror or exc}") \
                from exc
        return [LiveKey(self._view, _join(self.path, name)) for name in names]

    def subkey(self, name: str) -> RegistryKey | None:
        return self._view.open_key(_join(self.path, name))


class LiveRegistry:
    """``hkey`` (HKEY_LOCAL_MACHINE, HKEY_USERS) plus ``base`` (``SOFTWARE``, a SID)."""

    def __init__(self, hkey: str, base: str) -> None:
        if hkey not in _HKEYS:
            raise ValueError(f"unknown root key {hkey}")
        self.hkey = hkey
        self.base = base
        self.source = f"live {hkey}\\{base}"

    def handle(self, path: str) -> Any:
        if sys.platform != "win32":
            raise RegistryError("the live registry exists only on Windows")
        import winreg

        access = winreg.KEY_READ | winreg.KEY_WOW64_64KEY  # no 32-bit redirection
        return winreg.OpenKey(getattr(winreg, self.hkey), _join(self.base, path), 0, access)

    def open_key(self, path: str) -> RegistryKey | None:
        path = path.strip("\\")
        try:
            with self.handle(path):
                pass
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RegistryError(f"{self.source}\\{path}: {exc.strerror or exc}") from exc
        return LiveKey(self, path)


def live_views() -> dict[str, RegistryView]:
    """The running machine's SOFTWARE, SYSTEM and every loaded user hive (Windows only)."""
    views: dict[str, RegistryView] = {
        "HKLM\\SOFTWARE": LiveRegistry("HKEY_LOCAL_MACHINE", "SOFTWARE"),
        "HKLM\\SYSTEM": LiveRegistry("HKEY_LOCAL_MACHINE", "SYSTEM"),
    }
    users = LiveRegistry("HKEY_USERS", "").open_key("")
    for key in users.subkeys() if users else []:
        if key.name.startswith("S-1-5-21-") and not key.name.endswith("_Classes"):
            views[f"HKU\\{key.name}"] = LiveRegistry("HKEY_USERS", key.name)
    return views
