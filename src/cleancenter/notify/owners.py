"""IP address to network owner by longest-prefix match, IPv4 and IPv6 (issue #5).

Prefixes may nest: an ISP's /16 with a customer's /24 delegated to another owner, and a
/32 inside that. At build time they are flattened once into non-overlapping intervals,
each carrying the owner of the most specific prefix that covers it (or none); a look-up
is then one binary search over the interval starts: `numpy.searchsorted` over uint32 for
IPv4 and over 16-byte big-endian strings (``S16``, compared like 128-bit integers) for
IPv6. Two uint64 halves with a vectorized tie-break measured no faster than ``S16`` and
are more code.

Turning text into integers costs more than the search: ``socket.inet_pton`` mapped over
the whole list and joined into one buffer that numpy reads as big-endian integers is
about 10x faster than `ipaddress` and about half of a look-up from strings. Callers that
keep addresses as integers skip it: `lookup_many` takes a uint32 array (IPv4) or an
``(n, 2)`` uint64 array of high and low halves (IPv6) as well as strings.

Rules, the same for `PrefixTable.lookup` and `PrefixTable.lookup_many`:

- an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) is looked up as the IPv4 address,
  and an IPv4-mapped prefix (``::ffff:192.0.2.0/120``) is stored as the IPv4 prefix
  (``192.0.2.0/24``); an IPv6 prefix shorter than /96 (such as ``::/0``) does not cover
  IPv4-mapped addresses;
- addresses are what `socket.inet_pton` accepts: dotted quads without leading zeros and
  RFC 4291 IPv6 text; no zone ids (``fe80::1%eth0``), no surrounding spaces;
- an invalid address raises `AddressError` (naming it, and its index in a batch), unless
  ``strict=False``, which gives None for it, like an address no prefix covers;
- a prefix must have no host bits set (``10.0.0.1/8`` is refused: a typo more often than
  not); a bare address is a /32 or /128. The same prefix given twice with two owners
  raises `PrefixConflict`; given twice with the same owner it counts once.
"""

from __future__ import annotations

import gzip
import ipaddress
import operator
import socket
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import compress
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from cleancenter.collect.records import RecordError

__all__ = [
    "AddressError",
    "Prefix",
    "PrefixConflict",
    "PrefixTable",
    "pack_ipv4",
    "parse_prefix",
]

_pton4 = partial(socket.inet_pton, socket.AF_INET)
_pton6 = partial(socket.inet_pton, socket.AF_INET6)
_MAPPED_HI = 0
_MAPPED_LO_TOP = 0xFFFF  # ::ffff:0:0/96: the upper 32 bits of the low half
_PARSE_ERRORS = (OSError, TypeError, ValueError)  # inet_pton: bad text, not str, NUL inside

Addresses: TypeAlias = Sequence[str] | NDArray[Any]


class AddressError(ValueError):
    """Not an IP address or prefix."""


class PrefixConflict(ValueError):
    """The same prefix given with two different owners."""


@dataclass(frozen=True, slots=True)
class Prefix:
    """A parsed prefix: IP version (4 or 6), first address as an integer, length in bits."""

    version: int
    start: int
    length: int

    @property
    def bits(self) -> int:
        return 32 if self.version == 4 else 128

    @property
    def end(self) -> int:
        """The last address of the prefix, as an integer."""
        return self.start | ((1 << (self.bits - self.length)) - 1)

    def __str__(self) -> str:
        if self.version == 4:
            return str(ipaddress.IPv4Network((self.start, self.length)))
        return str(ipaddress.IPv6Network((self.start, self.length)))


def parse_prefix(text: str) -> Prefix:
    """``"192.0.2.0/24"``, ``"2001:db8::/32"``, or a bare address, as a `Prefix`.

    IPv4-mapped IPv6 prefixes of /96 or longer become IPv4 prefixes. Raises `AddressError`
    with the reason: not an address, a bad length, host bits set.
    """
    if not isinstance(text, str):
        raise AddressError(f"not an IP prefix: {text!r} (expected text)")
    address, slash, length_text = text.partition("/")
    try:
        if ":" in address:
            version, bits = 6, 128
            start = int.from_bytes(_pton6(address), "big")
        else:
            version, bits = 4, 32
            start = int.from_bytes(_pton4(address), "big")
    except _PARSE_ERRORS:
        raise AddressError(f"not an IP prefix: {text!r} (bad address {address!r})") from None
    if not slash:
        length = bits
    elif length_text.isascii() and length_text.isdigit() and int(length_text) <= bits:
        length = int(length_text)
    else:
        raise AddressError(
            f"not an IP prefix: {text!r} (length must be 0 to {bits} for IPv{version})")
    host = (1 << (bits - length)) - 1
    if start & host:
        network = start & ~host
        raise AddressError(
            f"not an IP prefix: {text!r} has host bits set "
            f"(did you mean {Prefix(version, network, length)}?)")
    if version == 6 and length >= 96 and start >> 32 == _MAPPED_LO_TOP:
        return Prefix(4, start & 0xFFFFFFFF, length - 96)
    return Prefix(version, start, length)


def pack_ipv4(ips: Sequence[str]) -> NDArray[np.uint32]:
    """IPv4 addresses as a uint32 array, for callers that keep them packed; every item
    must be a dotted quad (`AddressError` names the first that is not)."""
    try:
        return np.frombuffer(b"".join(map(_pton4, ips)), dtype=">u4").astype(np.uint32)
    except _PARSE_ERRORS:
        for i, ip in enumerate(ips):
            try:
                _pton4(ip)
            except _PARSE_ERRORS:
                raise AddressError(f"not an IPv4 address at index {i}: {ip!r}") from None
        raise


def _flatten(prefixes: list[tuple[Prefix, int]], bits: int) -> tuple[list[int], list[int]]:
    """Non-overlapping intervals from nested prefixes: (starts, owner indexes), starts
    ascending from 0, -1 for no owner; each interval has the owner of the most specific
    prefix over it, and neighbours never share an owner."""
    ordered = sorted(((p.start, p.end, owner) for p, owner in prefixes),
                     key=lambda item: (item[0], -item[1]))  # outer before inner
    points: list[tuple[int, int]] = [(0, -1)]
    stack: list[tuple[int, int]] = []  # (end, owner) of the prefixes still open, innermost last

    def close_before(position: int) -> None:
        while stack and stack[-1][0] < position:
            end, _ = stack.pop()
            points.append((end + 1, stack[-1][1] if stack else -1))

    for start, end, owner in ordered:
        close_before(start)
        points.append((start, owner))
        stack.append((end, owner))
    close_before(1 << bits)
    starts: list[int] = []
    owners: list[int] = []
    for position, owner in points:
        if position >= 1 << bits:
            continue  # a prefix that runs to the last address opens nothing after it
        if starts and starts[-1] == position:
            starts.pop()
            owners.pop()
        if owners and owners[-1] == owner:
            continue
        starts.append(position)
        owners.append(owner)
    return starts, owners


class PrefixTable:
    """Owners of IP prefixes; `lookup` gives the owner of the longest prefix that covers
    an address. Built once from ``(prefix, owner)`` pairs, IPv4 and IPv6 mixed, nested
    prefixes allowed; see the module docstring for the rules."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self.bad_lines: list[RecordError] = []
        """Lines of a data file that were skipped, with the reason (`from_ipasn`)."""
        entries: dict[Prefix, str] = {}
        for text, owner in pairs:
            if not isinstance(owner, str) or not owner:
                raise ValueError(f"prefix {text!r}: the owner must be a non-empty string, "
                                 f"not {owner!r}")
            prefix = parse_prefix(text)
            known = entries.setdefault(prefix, owner)
            if known != owner:
                raise PrefixConflict(
                    f"prefix {prefix} has two owners: {known!r} and {owner!r}"
                    + (f" (given as {text!r})" if text != str(prefix) else ""))
        self._build(entries)

    @classmethod
    def from_ipasn(cls, path: str | Path) -> PrefixTable:
        """A table of origin ASes from a pyasn "IPASN" data file, owners ``"AS<number>"``.

        One ``prefix/len<TAB>asn`` a line; blank lines and lines starting with ``;`` are
        skipped; gzip-compressed files are read as such. A bad line (not two fields, a bad
        prefix or ASN, a prefix already given another ASN on an earlier line) is skipped
        and listed in `bad_lines` as ``file:line`` and the reason; the first ASN stays.
        """
        path = Path(path)
        with path.open("rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
        opener = gzip.open if compressed else open
        entries: dict[Prefix, str] = {}
        first_line: dict[Prefix, int] = {}
        bad: list[RecordError] = []
        with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
            for number, line in enumerate(fh, 1):
                text = line.strip()
                if not text or text.startswith(";"):
                    continue
                where = f"{path}:{number}"
                fields = text.split()
                if len(fields) != 2:
                    bad.append(RecordError(where, f"expected 'prefix/len<TAB>asn', got {text!r}"))
                    continue
                prefix_text, asn_text = fields
                if not (asn_text.isascii() and asn_text.isdigit()) or int(asn_text) >= 1 << 32:
                    bad.append(RecordError(where, f"bad ASN {asn_text!r} (0 to 4294967295)"))
                    continue
                try:
                    prefix = parse_prefix(prefix_text)
                except AddressError as exc:
                    bad.append(RecordError(where, str(exc)))
                    continue
                owner = f"AS{int(asn_text)}"
                known = entries.setdefault(prefix, owner)
                if known != owner:
                    bad.append(RecordError(where, f"prefix {prefix} is already {known} "
                                                  f"(line {first_line[prefix]}); {owner} skipped"))
                first_line.setdefault(prefix, number)
        table = cls.__new__(cls)
        table.bad_lines = bad
        table._build(entries)
        return table

    def _build(self, entries: dict[Prefix, str]) -> None:
        names = sorted(set(entries.values()))
        index = {name: i for i, name in enumerate(names)}
        self._count = len(entries)
        self._names: tuple[str, ...] = tuple(names)
        self._names_or_none: tuple[str | None, ...] = (*names, None)
        # owner index -1 (no owner) picks the trailing None
        self._objects: NDArray[np.object_] = np.array([*names, None], dtype=object)
        v4 = [(p, index[o]) for p, o in entries.items() if p.version == 4]
        v6 = [(p, index[o]) for p, o in entries.items() if p.version == 6]
        starts4, owners4 = _flatten(v4, 32)
        starts6, owners6 = _flatten(v6, 128)
        self._starts4_list = starts4
        self._owners4_list = owners4
        self._starts6_list = starts6
        self._owners6_list = owners6
        self._starts4: NDArray[np.uint32] = np.array(starts4, dtype=np.uint32)
        self._owners4: NDArray[np.int32] = np.array(owners4, dtype=np.int32)
        self._starts6: NDArray[np.bytes_] = np.frombuffer(
            b"".join(s.to_bytes(16, "big") for s in starts6), dtype="S16")
        self._owners6: NDArray[np.int32] = np.array(owners6, dtype=np.int32)

    def __len__(self) -> int:
        """How many distinct prefixes the table holds."""
        return self._count

    @property
    def owners(self) -> tuple[str, ...]:
        """The distinct owners, sorted."""
        return self._names

    @property
    def intervals(self) -> int:
        """How many flat intervals (IPv4 and IPv6) the prefixes became."""
        return len(self._starts4_list) + len(self._starts6_list)

    def lookup(self, ip: str, *, strict: bool = True) -> str | None:
        """The owner of the longest prefix that covers ``ip``, or None."""
        try:
            if ":" in ip:
                value = int.from_bytes(_pton6(ip), "big")
                if value >> 32 != _MAPPED_LO_TOP:
                    i = bisect_right(self._starts6_list, value) - 1
                    return self._names_or_none[self._owners6_list[i]]
                value &= 0xFFFFFFFF
            else:
                value = int.from_bytes(_pton4(ip), "big")
        except _PARSE_ERRORS:
            if strict:
                raise AddressError(f"not an IP address: {ip!r}") from None
            return None
        i = bisect_right(self._starts4_list, value) - 1
        return self._names_or_none[self._owners4_list[i]]

    def lookup_many(self, ips: Addresses, *, strict: bool = True) -> list[str | None]:
        """`lookup` for many addresses at once, in order.

        ``ips``: a sequence (or numpy array) of address strings, IPv4 and IPv6 mixed; or a
        1-D numpy integer array of IPv4 addresses (0 to 2**32 - 1); or an ``(n, 2)``
        uint64 array of IPv6 addresses as (high, low) 64-bit halves.
        """
        found: list[str | None] = self._objects[self.owner_indexes(ips, strict=strict)].tolist()
        return found

    def owner_indexes(self, ips: Addresses, *, strict: bool = True) -> NDArray[np.int32]:
        """Like `lookup_many`, as indexes into `owners` (-1: no owner or not an address)."""
        if isinstance(ips, np.ndarray) and ips.dtype.kind in "iu":
            return self._packed(ips, strict)
        items: Sequence[Any] = ips.tolist() if isinstance(ips, np.ndarray) else ips
        try:  # all IPv4, the common case: one C-level pass
            return self._find4(np.frombuffer(b"".join(map(_pton4, items)), dtype=">u4"))
        except _PARSE_ERRORS:
            pass
        try:
            is6 = [":" in ip for ip in items]
            raw4 = b"".join(map(_pton4, compress(items, map(operator.not_, is6))))
            raw6 = b"".join(map(_pton6, compress(items, is6)))
            flags = np.array(is6, dtype=bool)
            pos4 = np.flatnonzero(~flags)
            pos6 = np.flatnonzero(flags)
            bad: list[int] = []
        except _PARSE_ERRORS:
            raw4, raw6, pos4, pos6, bad = self._parse_each(items)
            if bad and strict:
                raise AddressError(
                    f"not an IP address at index {bad[0]}: {items[bad[0]]!r}"
                    + (f" ({len(bad)} bad addresses in all)" if len(bad) > 1 else "")) from None
        out = np.full(len(items), -1, dtype=np.int32)
        out[pos4] = self._find4(np.frombuffer(raw4, dtype=">u4"))
        out[pos6] = self._find6(np.frombuffer(raw6, dtype="S16"))
        return out

    @staticmethod
    def _parse_each(
        ips: Sequence[Any],
    ) -> tuple[bytes, bytes, NDArray[np.intp], NDArray[np.intp], list[int]]:
        """Item by item, for batches with bad entries: which are IPv4, IPv6, neither."""
        raw4: list[bytes] = []
        raw6: list[bytes] = []
        pos4: list[int] = []
        pos6: list[int] = []
        bad: list[int] = []
        for i, ip in enumerate(ips):
            try:
                if ":" in ip:
                    raw6.append(_pton6(ip))
                    pos6.append(i)
                else:
                    raw4.append(_pton4(ip))
                    pos4.append(i)
            except _PARSE_ERRORS:
                bad.append(i)
        return (b"".join(raw4), b"".join(raw6), np.array(pos4, dtype=np.intp),
                np.array(pos6, dtype=np.intp), bad)

    def _packed(self, ips: NDArray[Any], strict: bool) -> NDArray[np.int32]:
        if ips.ndim == 1:
            if ips.dtype == np.uint32:
                return self._find4(ips)
            wide = ips.astype(np.int64) if ips.dtype.kind == "i" else ips
            bad = (wide < 0) | (wide > 0xFFFFFFFF)
            if bad.any():
                if strict:
                    i = int(np.flatnonzero(bad)[0])
                    raise AddressError(f"not an IPv4 address at index {i}: {int(ips[i])} "
                                       f"(0 to 4294967295)")
                out = np.full(len(ips), -1, dtype=np.int32)
                out[~bad] = self._find4(wide[~bad].astype(np.uint32))
                return out
            return self._find4(wide.astype(np.uint32))
        if ips.ndim == 2 and ips.shape[1] == 2:
            if ips.dtype.kind == "i" and (ips < 0).any():
                raise AddressError("IPv6 halves must be unsigned 64-bit integers")
            halves = np.empty(ips.shape, dtype=">u8")
            halves[...] = ips
            return self._find6(halves.reshape(-1).view("S16"))
        raise AddressError(f"packed addresses must be an (n,) IPv4 or (n, 2) IPv6 integer "
                           f"array, not shape {ips.shape}")

    def _find4(self, values: NDArray[Any]) -> NDArray[np.int32]:
        i = np.searchsorted(self._starts4, values.astype(np.uint32, copy=False), side="right")
        return self._owners4[i - 1]

    def _find6(self, values: NDArray[Any]) -> NDArray[np.int32]:
        halves = values.view(">u8").reshape(-1, 2)
        mapped = (halves[:, 0] == _MAPPED_HI) & (halves[:, 1] >> np.uint64(32) == _MAPPED_LO_TOP)
        if not mapped.any():
            return self._owners6[np.searchsorted(self._starts6, values, side="right") - 1]
        out = np.empty(len(values), dtype=np.int32)
        plain = ~mapped
        out[plain] = self._owners6[np.searchsorted(self._starts6, values[plain], side="right") - 1]
        out[mapped] = self._find4((halves[mapped, 1] & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        return out
