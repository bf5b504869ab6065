"""ISP lease logs -> `Lease` (who held which address, from when to when).

Readers stream their file (never the whole of it in memory: per-address or per-session
state only) and yield `Lease` or `LeaseError` items, like the collect readers yield
`RecordError`: a bad line is one `LeaseError` with the file and line number, and the
reader goes on with the next line. Only an unreadable file (missing, no permission)
raises `OSError`.

Formats (``FORMATS``; `detect_format` tells them apart from the first 64 KiB):

- ``dhcpd``: ISC ``dhcpd.leases`` ``lease ADDR { ... }`` blocks; ``starts``/``ends`` are
  UTC (``4 2026/11/26 01:00:00``, ``epoch 1795654800``, ``never``); the subscriber key is
  ``hardware ethernet``, else ``uid``. DHCPv6 ``ia-na``/``ia-ta``/``ia-pd`` blocks are not
  read (one `LeaseError` each); ``host``/``failover`` blocks are skipped.
- ``kea``: Kea memfile CSV, v4 (``address,hwaddr,client_id,...``) or v6
  (``address,duid,...``) by its header; start = ``expire - valid_lifetime``, end =
  ``expire`` (an infinite lifetime, 0xffffffff, is end None); ``&#xNN`` escapes (Kea
  writes commas as ``&#x2c``) are undone. Key: v4 ``hwaddr`` else ``client_id``; v6
  ``duid`` else ``hwaddr``. A v6 prefix delegation (``lease_type`` 2) has ip
  ``prefix/len``.
- ``radacct``: the FreeRADIUS ``radacct`` table exported as CSV with a header (column
  names of FreeRADIUS's SQL schema, any case): ``acctstarttime``, ``acctstoptime``,
  ``username``, ``framedipaddress``, ``framedipv6address``, ``delegatedipv6prefix``,
  ``callingstationid`` (key when ``username`` is empty). Times are ISO 8601; a time
  without an offset (MySQL ``datetime``) is taken as UTC. An empty, ``NULL``, ``\\N`` or
  ``0000-00-00 00:00:00`` stop is an open session. Comma or tab separated.
- ``radius-detail``: FreeRADIUS ``detail`` files; Start and Stop are paired by
  ``Acct-Unique-Session-Id`` (else NAS + ``Acct-Session-Id``); the time of a record is
  ``Event-Timestamp`` (epoch, or UTC/GMT text), else ``Timestamp``. A Start without a
  Stop is an open lease; a Stop without a Start is a `LeaseError` (and, when it carries
  ``Acct-Session-Time``, also the lease it implies); ``Accounting-On``/``-Off`` of a NAS
  ends its open sessions.
- ``cgnat``: one line per port-block event,
  ``<ISO 8601 time> ALLOC|RELEASE <inside ip> <public ip> <first port>-<last port>
  [<subscriber>]``; ALLOC and RELEASE of the same (public ip, ports) make one lease of
  the public ip and its port range to the subscriber (else the inside ip).

`read_columns` gives the same leases and errors as numpy columns (`LeaseColumns`, for
`LeaseIndex.from_columns`); for Kea it has its own reader, which holds the file's rows
(not only per-address state) and does the DHCP history in numpy.

The one-record-per-line readers (Kea, radacct, CGNAT) read blocks of 1 MiB, split rows
themselves and check IPv4 addresses with `socket.inet_pton`; a line with a quote, a stray
CR or anything else unusual goes the exact old way (`csv`, `ipaddress`, `parse_iso`).

DHCP logs (``dhcpd``, ``kea``) are histories of one binding per address: a later record
of the same address and client continues the lease (the earliest start, the latest
end: renewals and early releases), a later record for another client ends the earlier
lease where it starts. These leases therefore come out when the address changes hands
or at the end of the file. A lease's ``source`` is the line of the record that began it.
"""

from __future__ import annotations

import csv
import gzip
import io
import ipaddress
import itertools
import operator
import re
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import BinaryIO, TypeVar, cast, overload

import numpy as np
from numpy.typing import NDArray

FORMATS = ("dhcpd", "kea", "radacct", "radius-detail", "cgnat")

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_INFINITE = 0xFFFFFFFF  # Kea's infinite valid lifetime
_HEAD = 64 * 1024
_CACHE_MAX = 1 << 20


@dataclass(slots=True)
class Lease:
    """One address held by one subscriber from ``start`` to ``end`` (half-open, UTC)."""

    ip: str  # normalized (``ipaddress`` form); a delegated prefix is ``addr/len``
    start: datetime
    end: datetime | None  # None: still open (no Stop, ``ends never``, not released)
    subscriber: str | None  # MAC / client-id / DUID, User-Name, inside ip or subscriber
    source: str  # "path:line" of the record that began the lease
    port_start: int | None = None  # CGNAT port block, else None
    port_end: int | None = None
    hostname: str | None = None  # DHCP client hostname, when the log has one


@dataclass(frozen=True, slots=True)
class LeaseError:
    """A bad line or record: where it was and what was wrong with it."""

    source: str  # the file
    line_no: int
    reason: str

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line_no}"


LeaseItem = Lease | LeaseError
_T = TypeVar("_T")
Reader = Callable[[Path], Iterator[LeaseItem]]


class BadValue(ValueError):
    """A field that does not parse; the message is the reason shown to a person."""


# ---------------------------------------------------------------- shared helpers

_ip_cache: dict[str, str] = {}
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_CANONICAL_V4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}", re.ASCII).fullmatch
# The same test in C, for the hot loops: `socket.inet_pton` takes exactly the dotted
# quads `_CANONICAL_V4` matches (four octets 0-255, no leading zeros, ASCII digits;
# tests/notify/test_leases.py checks that on this platform) and raises OSError (or
# ValueError: a NUL) for anything else, about 0.13 µs against 0.3 µs for a look-up in a
# cache of 65,536 addresses (a cache miss in memory) and 0.6 µs for the regex.
_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET


def norm_ip(text: str) -> str:
    """The normalized form of an IPv4/IPv6 address (cached: pools repeat addresses).

    Hot loops call ``_ip_cache.get(text) or norm_ip(text)``: a hit costs one lookup.
    """
    value = _ip_cache.get(text)
    if value is not None:
        return value
    # the common case, an IPv4 address already in normal form, skips `ipaddress`
    value = text if _CANONICAL_V4(text) else _parse_ip(text)
    if len(_ip_cache) >= _CACHE_MAX:
        _ip_cache.clear()
    _ip_cache[text] = value
    return value


def _parse_ip(text: str) -> str:
    try:
        value = str(ipaddress.ip_address(text))
    except ValueError:
        raise BadValue(f"not an IP address: {text[:64]!r}") from None
    return value


def _norm_prefix(text: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise BadValue(f"not an IP prefix: {text[:64]!r}") from None
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return str(net)


def _from_epoch(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise BadValue(f"time out of range: {seconds}") from None


def parse_iso(text: str) -> datetime:
    """ISO 8601 (``T`` or space, ``Z`` or offset); without an offset, UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(f"bad timestamp {text[:64]!r}") from None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    if when.utcoffset():
        try:
            return when.astimezone(UTC)
        except OverflowError:
            raise BadValue(f"timestamp out of range {text[:64]!r}") from None
    return when if when.tzinfo is UTC else when.replace(tzinfo=UTC)


def _open(path: Path) -> BinaryIO:
    """The file's bytes; a gzip file (rotated logs) is read through gzip."""
    fh = io.BufferedReader(io.FileIO(path), 1 << 20)
    if fh.peek(2)[:2] == b"\x1f\x8b":
        fh.close()
        return cast(BinaryIO, gzip.open(path, "rb"))
    return fh


def _bad_utf8(path: str, no: int, raw: bytes) -> LeaseError:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return LeaseError(path, no, f"invalid UTF-8 at byte {exc.start}")
    return LeaseError(path, no, "invalid UTF-8")  # pragma: no cover


_BLOCK = 1 << 20  # bytes read at a time by the one-record-per-line readers


def _blocks(fh: BinaryIO, name: str, no: int, bad: dict[int, LeaseError],
            strip_cr: bool = False, tail: list[int] | None = None,
            csv_crlf: bool = False) -> Iterator[list[str]]:
    """The rest of ``fh`` as lists of lines (``no``: the number of the first), read and
    decoded a block at a time: the lines ``for raw in fh`` gives (split at ``\\n`` only,
    a last line without one too), without the ``\\n``; with ``strip_cr`` also without
    trailing ``\\r``; with ``csv_crlf``, while no ``"`` has been seen (no quoted field can
    be open) and in a block where every ``\\r`` ends a line, without that ``\\r`` (`csv`
    reads such a line the same either way). A line that is not
    UTF-8 is ``""`` and its error is ``bad[its number]``: the readers look there when a
    line is empty. When the last line has no ``\\n``, its number is appended to ``tail``
    before it is yielded.
    """
    crlf = [csv_crlf]  # cleared for good by the first block with a '"'
    for data, last in _raw_blocks(fh):
        if last and tail is not None:
            tail.append(no)
        lines = _decode_block(data, name, no, bad, strip_cr, crlf)
        no += len(lines)
        yield lines


def _raw_blocks(fh: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """``fh`` in blocks of whole lines, without the block's last ``\\n``; True with the
    last line of the file when it has no ``\\n``."""
    rest = b""
    while True:
        data = fh.read(_BLOCK)
        if not data:
            break
        if rest:
            data = rest + data
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        rest = data[cut + 1:]
        yield data[:cut], False
    if rest:
        yield rest, True


def _decode_block(data: bytes, name: str, no: int, bad: dict[int, LeaseError],
                  strip_cr: bool, crlf: list[bool]) -> list[str]:
    if crlf[0] and b'"' in data:
        crlf[0] = False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        out = []
        for i, raw in enumerate(data.split(b"\n"), no):
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                bad[i] = _bad_utf8(name, i, raw)
                out.append("")
    else:
        if "\r" not in text:
            return text.split("\n")
        if crlf[0]:
            cr_end = text[-1] == "\r"  # the block was cut after a CRLF's "\r"
            if text.count("\r") == text.count("\r\n") + cr_end:
                out = text.replace("\r\n", "\n").split("\n")
                if cr_end:
                    out[-1] = out[-1][:-1]
                return out
        if not strip_cr:
            return text.split("\n")
        out = text.split("\n")
    return [line.rstrip("\r") for line in out] if strip_cr else out


_DAY_SECONDS: list[timedelta] = []  # timedelta(seconds=i) for i in range(86400), on first use


def _epoch_days() -> tuple[dict[int, datetime], list[timedelta]]:
    """A day cache (day number -> its midnight, UTC) and the 86,400 seconds of a day:
    ``days[s // 86400] + seconds[s % 86400]`` is ``datetime.fromtimestamp(s, UTC)`` at
    about a third of its cost; a day not in the cache comes from `_epoch_day`."""
    if not _DAY_SECONDS:
        _DAY_SECONDS.extend(timedelta(seconds=i) for i in range(86400))
    return {}, _DAY_SECONDS


def _epoch_time(days: dict[int, datetime], seconds: int) -> datetime:
    """``datetime.fromtimestamp(seconds, UTC)`` through the day cache ``days``."""
    return (days.get(seconds // 86400) or _epoch_day(days, seconds)) + _DAY_SECONDS[seconds % 86400]


def _epoch_day(days: dict[int, datetime], seconds: int) -> datetime:
    """The midnight (UTC) of the day of ``seconds``, put in ``days``; `_from_epoch` checks
    the range (`BadValue` with the same reason as before)."""
    when = _from_epoch(seconds)
    day, rest = divmod(seconds, 86400)
    base = when - _DAY_SECONDS[rest]
    if len(days) >= 4096:
        days.clear()
    days[day] = base
    return base


class _History:
    """One binding per address (DHCP): later records continue or supersede earlier ones."""

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[str, Lease] = {}

    def add(self, new: Lease) -> Lease | None:
        """Record ``new``; return the earlier lease of its address when that one is done."""
        old = self._open.get(new.ip)
        self._open[new.ip] = new
        if old is None:
            return None
        if (
            new.subscriber is not None
            and new.subscriber == old.subscriber
            and (old.end is None or new.start <= old.end)
            and new.start >= old.start
        ):  # the same client renews, releases or lets the lease expire: one lease
            old.end = new.end
            if new.hostname:
                old.hostname = new.hostname
            self._open[new.ip] = old
            return None
        if old.start <= new.start and (old.end is None or new.start < old.end):
            old.end = new.start  # superseded by the address's next binding
        return old

    def drain(self) -> Iterator[Lease]:
        yield from self._open.values()
        self._open.clear()


# ---------------------------------------------------------------- ISC dhcpd.leases

_day_cache: dict[str, int] = {}


def _dhcpd_time(value: str) -> datetime | None:
    """``4 2026/11/26 01:00:00`` (weekday, UTC), ``epoch N [# comment]`` or ``never``."""
    if value == "never":
        return None
    parts = value.split()
    try:
        if parts[0] == "epoch":
            return _from_epoch(int(parts[1]))
        if len(parts) != 3:
            raise ValueError
        day_text, clock = parts[1], parts[2]
        day = _day_cache.get(day_text)
        if day is None:
            y, m, d = day_text.split("/")
            day = (date(int(y), int(m), int(d)).toordinal() - _EPOCH_ORDINAL) * 86400
            if len(_day_cache) >= _CACHE_MAX:
                _day_cache.clear()
            _day_cache[day_text] = day
        hh, mm, ss = clock.split(":")
        h, mi, s = int(hh), int(mm), int(ss)
        if not (0 <= h < 24 and 0 <= mi < 60 and 0 <= s < 61):
            raise ValueError
    except (ValueError, IndexError):
        raise BadValue(f"bad time {value[:64]!r}") from None
    return _from_epoch(day + h * 3600 + mi * 60 + s)


def read_dhcpd(path: Path) -> Iterator[LeaseItem]:
    """ISC ``dhcpd.leases``: one `Lease` per client binding of each address."""
    name = str(path)
    history = _History()
    in_lease = False
    skip_depth = 0  # inside a block that is not a lease (host, failover, ia-na, ...)
    block_line = 0
    ip = ""
    starts: datetime | None = None
    ends: datetime | None = None
    has_starts = has_ends = False
    hw: str | None = None
    uid: str | None = None
    hostname: str | None = None
    block_bad = False
    with _open(path) as fh:
        no = 0
        for no, raw in enumerate(fh, 1):
            try:
                s = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                yield _bad_utf8(name, no, raw)
                block_bad = block_bad or in_lease
                continue
            if not s or s[0] == "#":
                continue
            if in_lease:
                if s[-1] != ";" and "; #" in s:  # db-time-format local: "epoch N; # date"
                    s = s[: s.index("; #") + 1]
                if s[-1] == ";":
                    key, _, rest = s[:-1].partition(" ")
                    try:
                        if key == "starts":
                            starts = _dhcpd_time(rest.strip())
                            has_starts = True
                        elif key == "ends":
                            ends = _dhcpd_time(rest.strip())
                            has_ends = True
                        elif key == "hardware":
                            hw = rest.split()[-1].lower()
                        elif key == "uid":
                            uid = rest.strip()
                        elif key == "client-hostname":
                            hostname = rest.strip().strip('"')
                    except BadValue as exc:
                        yield LeaseError(name, no, str(exc))
                        block_bad = True
                    except IndexError:
                        yield LeaseError(name, no, f"bad statement {s[:64]!r}")
                    continue
                if s == "}":
                    in_lease = False
                    if block_bad:
                        continue
                    if not (has_starts and has_ends) or starts is None:
                        what = "starts" if not has_starts or starts is None else "ends"
                        yield LeaseError(name, block_line, f"lease {ip} has no {what}")
                        continue
                    if ends is not None and ends < starts:
                        yield LeaseError(name, block_line, f"lease {ip} ends before it starts")
                        continue
                    done = history.add(Lease(ip, starts, ends, hw or uid, f"{name}:{block_line}",
                                             hostname=hostname))
                    if done is not None:
                        yield done
                    continue
                if s.startswith("lease ") and s[-1] == "{":
                    yield LeaseError(name, block_line,
                                     f"lease {ip} block not closed (truncated?)")
                    # and fall through: a new block starts here
                else:
                    yield LeaseError(name, no, f"not a lease statement: {s[:64]!r}")
                    continue
            if skip_depth:
                if s[-1] == "{":
                    skip_depth += 1
                elif s[-1] == "}":
                    skip_depth -= 1
                continue
            if s[-1] == "{":
                word = s.split(None, 1)[0]
                if word == "lease":
                    try:
                        ip = norm_ip(s[6:-1].strip())
                    except BadValue as exc:
                        yield LeaseError(name, no, str(exc))
                        skip_depth = 1
                        continue
                    in_lease, block_line, block_bad = True, no, False
                    starts = ends = hw = uid = hostname = None
                    has_starts = has_ends = False
                    continue
                if word in ("ia-na", "ia-ta", "ia-pd"):
                    yield LeaseError(name, no, f"DHCPv6 {word} block not read (IPv4 leases only)")
                skip_depth = 1
                continue
            if s[-1] == ";":  # top-level statement: authoring-byte-order, server-duid, ...
                continue
            yield LeaseError(name, no, f"not a dhcpd.leases statement: {s[:64]!r}")
        if in_lease:
            yield LeaseError(name, block_line, f"lease {ip} block not closed at end of file"
                             " (truncated?)")
        elif skip_depth:
            yield LeaseError(name, no, "block not closed at end of file (truncated?)")
    yield from history.drain()


# ---------------------------------------------------------------- Kea memfile CSV

_KEA_ESCAPE = re.compile(r"&#x([0-9a-fA-F]{2})")


def kea_unescape(text: str) -> str:
    """Undo Kea's CSV escapes (``&#x2c`` is a comma)."""
    if "&#x" not in text:
        return text
    text = text.replace("&#x2c", ",")  # the one escape Kea writes in practice
    if "&#x" not in text:
        return text
    return _KEA_ESCAPE.sub(_kea_char, text)


def _kea_char(m: re.Match[str]) -> str:
    return chr(int(m.group(1), 16))


_KeaColumns = tuple[int, int, int, int, int, int, int, int, int, bool]


def _kea_header(name: str, head: bytes) -> _KeaColumns | LeaseError:
    """The Kea header line -> (number of columns, the column indexes the readers use, v6
    with prefixes), or the error that ends the file."""
    try:
        columns = head.decode("utf-8").strip().split(",")
    except UnicodeDecodeError:
        return _bad_utf8(name, 1, head)
    col = {c: i for i, c in enumerate(columns)}
    v6 = "duid" in col
    need = ("address", "valid_lifetime", "expire", "duid" if v6 else "hwaddr")
    missing = [c for c in need if c not in col]
    if missing or columns[0] != "address":
        return LeaseError(name, 1, f"not a Kea lease file header (missing {missing})")
    i_type = col.get("lease_type", -1)
    return (len(columns), col["address"], col["valid_lifetime"], col["expire"],
            col["duid"] if v6 else col["hwaddr"], col.get("hwaddr" if v6 else "client_id", -1),
            col.get("hostname", -1), i_type, col.get("prefix_len", -1),
            v6 and i_type >= 0)  # v6 with a lease_type column: prefixes possible


_Binding = tuple[int, int | None, str | None, str | None, int]
# the open binding of an address in `read_kea`: start, end (None: open), subscriber,
# hostname (epoch seconds), line


def read_kea(path: Path) -> Iterator[LeaseItem]:
    """Kea memfile lease CSV, v4 or v6 by its header line.

    Kea writes no quotes (commas in values are ``&#x2c``), so a row is a plain split at
    ``,``. The per-address history is `_History.add` inlined, with each address's open
    binding kept as a small tuple of epoch seconds: the `Lease` (and its datetimes and
    ``source``) is made only when it comes out. With tens of thousands of addresses
    changing hands the reader is bound by memory, not by work: fewer objects per
    pending lease is what makes it faster.
    """
    name = str(path)
    with _open(path) as fh:
        head = _kea_header(name, fh.readline())
        if isinstance(head, LeaseError):
            yield head
            return
        n, i_addr, i_valid, i_exp, i_key, i_key2, i_host, i_type, i_plen, pd = head
        bad: dict[int, LeaseError] = {}
        days, secs = _epoch_days()
        day_of = days.get
        ip_of = _ip_cache.get
        opened: dict[str, _Binding] = {}  # normalized address -> its open binding
        get = opened.get
        old: _Binding | None
        no = 1
        lines = itertools.chain.from_iterable(_blocks(fh, name, 2, bad, strip_cr=True))
        for f in map(str.split, lines, itertools.repeat(",")):
            no += 1
            if len(f) != n:
                if f == [""]:  # an empty line (or one that was not UTF-8)
                    if bad:
                        err = bad.pop(no, None)
                        if err is not None:
                            yield err
                    continue
                yield LeaseError(name, no, f"{len(f)} fields, the header has {n}")
                continue
            try:
                ip = f[i_addr]
                # a known address in normal form is its own key (no prefixes: those keys
                # are not address texts)
                old = None if pd else get(ip)
                if old is None:
                    ip = ip_of(ip) or norm_ip(ip)
                    if pd and f[i_type] == "2" and f[i_plen] != "128":
                        ip = _norm_prefix(f"{ip}/{f[i_plen]}")
                    old = get(ip)
                valid = int(f[i_valid])
                expire = int(f[i_exp])
                if valid < 0 or expire < 0:
                    raise BadValue(f"negative time: {valid}, {expire}")
                start = expire - valid
                if day_of(start // 86400) is None:
                    _epoch_day(days, start)  # the range check of `_from_epoch`
                if valid == _INFINITE:
                    end = None
                else:
                    end = expire
                    if day_of(expire // 86400) is None:
                        _epoch_day(days, expire)
            except BadValue as exc:
                yield LeaseError(name, no, str(exc))
                continue
            except (ValueError, OverflowError):
                yield LeaseError(name, no, f"bad valid_lifetime/expire {f[i_valid]!r}, "
                                           f"{f[i_exp]!r}")
                continue
            key = f[i_key] or (f[i_key2] if i_key2 >= 0 else "") or None
            host = f[i_host] if i_host >= 0 else None
            if not host:
                host = None
            elif "&#x" in host:  # `kea_unescape`, inlined
                host = host.replace("&#x2c", ",")
                if "&#x" in host:
                    host = _KEA_ESCAPE.sub(_kea_char, host)
            if old is None:
                opened[ip] = (start, end, key, host, no)
                continue
            o_start, o_end, o_key, o_host, o_no = old
            if (
                key is not None
                and key == o_key
                and (o_end is None or start <= o_end)
                and start >= o_start
            ):  # the same client renews, releases or lets the lease expire: one lease
                opened[ip] = (o_start, end, o_key, host or o_host, o_no)
                continue
            if o_start <= start and (o_end is None or start < o_end):
                o_end = start  # superseded by the address's next binding
            opened[ip] = (start, end, key, host, no)
            yield Lease(ip, (day_of(o_start // 86400) or _epoch_day(days, o_start))
                        + secs[o_start % 86400],
                        None if o_end is None else
                        (day_of(o_end // 86400) or _epoch_day(days, o_end)) + secs[o_end % 86400],
                        o_key, f"{name}:{o_no}", None, None, o_host)
    for ip, (o_start, o_end, o_key, o_host, o_no) in opened.items():
        yield Lease(ip, _epoch_time(days, o_start),
                    None if o_end is None else _epoch_time(days, o_end),
                    o_key, f"{name}:{o_no}", None, None, o_host)


# ---------------------------------------------------------------- leases as columns

OPEN_NS = int(np.iinfo(np.int64).max)  # `correlate.OPEN`: the end of a lease still open
_NS_MIN_S, _NS_MAX_S = -(2**63) // 10**9 + 1, (2**63 - 1) // 10**9 - 1  # int64 ns range
_UNIX = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_NOT_V4 = b"\0\0\0\0"


@dataclass(slots=True)
class LeaseColumns:
    """The leases of one file as columns, and its errors: row ``i`` is the ``i``-th
    `Lease` `open_leases` yields for the file (`leases` gives them back), ``errors`` its
    `LeaseError` items in order. Times are int64 ns since the epoch (UTC), for
    `LeaseIndex.from_columns`; ``ip4`` is the addresses as uint32 when all are IPv4
    addresses (no prefixes), else None."""

    source: str  # the file
    ip: Sequence[str]
    start: NDArray[np.int64]
    end: NDArray[np.int64]  # OPEN_NS: still open
    subscriber: Sequence[str | None]
    hostname: Sequence[str | None]
    line: NDArray[np.int64]  # the line of the record that began the lease
    port_start: NDArray[np.int64]  # -1: no port block
    port_end: NDArray[np.int64]
    ip4: NDArray[np.uint32] | None
    errors: list[LeaseError]

    def __len__(self) -> int:
        return len(self.ip)

    def leases(self) -> Iterator[Lease]:
        """The rows as `Lease` objects, as `open_leases` gives them."""
        name = self.source
        for ip, start, end, sub, line, p0, p1, host in zip(
                self.ip, self.start.tolist(), self.end.tolist(), self.subscriber,
                self.line.tolist(), self.port_start.tolist(), self.port_end.tolist(),
                self.hostname, strict=True):
            yield Lease(ip, _UNIX + (start // 1000) * _US,
                        None if end == OPEN_NS else _UNIX + (end // 1000) * _US,
                        sub, f"{name}:{line}", None if p0 < 0 else p0,
                        None if p1 < 0 else p1, host)


class Picked(Sequence[_T]):
    """``values[index[0]], values[index[1]], ...``, looked up when read (a column of
    `LeaseColumns` without copying it into the leases' order)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[_T], index: NDArray[np.int64]) -> None:
        self._values = values
        self._index = index

    def __len__(self) -> int:
        return len(self._index)

    @overload
    def __getitem__(self, i: int) -> _T: ...

    @overload
    def __getitem__(self, i: slice) -> list[_T]: ...

    def __getitem__(self, i: int | slice) -> _T | list[_T]:
        if isinstance(i, slice):
            values = self._values
            return [values[j] for j in self._index[i].tolist()]
        return self._values[int(self._index[i])]

    def __iter__(self) -> Iterator[_T]:
        values = self._values
        for j in self._index.tolist():
            yield values[j]


def read_columns(path: Path | str, fmt: str | None = None) -> LeaseColumns:
    """`open_leases` as columns (same leases in the same order, same errors).

    Kea files have a reader of their own (the goal of issue #5: >= 500,000 lines/s,
    which the streaming reader misses on DHCP logs where addresses change hands all the
    time: its per-address history is bound by memory); it holds the whole file as
    columns, not per-address state. Its times must fit int64 ns (years 1678-2261): a row
    outside is an error here (`open_leases` takes it). The other formats are read by
    `open_leases` and turned into columns.
    """
    path = Path(path)
    if fmt == "kea" or (fmt is None and _detect_file(path) == "kea"):
        return _kea_columns(path)
    leases: list[Lease] = []
    errors: list[LeaseError] = []
    for item in open_leases(path, fmt):
        if isinstance(item, Lease):
            leases.append(item)
        else:
            errors.append(item)
    return _columns(str(path), leases, errors)


def _ns(when: datetime) -> int:
    return ((when - _UNIX) // _US) * 1000


def _columns(name: str, leases: list[Lease], errors: list[LeaseError]) -> LeaseColumns:
    def i64(values: Iterable[int]) -> NDArray[np.int64]:
        return np.fromiter(values, dtype=np.int64, count=len(leases))

    ips = [x.ip for x in leases]
    ip4 = None
    if all(_CANONICAL_V4(ip) for ip in ips):
        ip4 = np.fromiter((int(ipaddress.IPv4Address(ip)) for ip in ips), dtype=np.uint32,
                          count=len(ips))
    return LeaseColumns(
        name, ips, i64(_ns(x.start) for x in leases),
        i64(OPEN_NS if x.end is None else _ns(x.end) for x in leases),
        [x.subscriber for x in leases], [x.hostname for x in leases],
        i64(int(x.source.rsplit(":", 1)[1]) for x in leases),
        i64(-1 if x.port_start is None else x.port_start for x in leases),
        i64(-1 if x.port_end is None else x.port_end for x in leases), ip4, errors)


def _kea_columns(path: Path) -> LeaseColumns:
    """`read_kea` as columns: one pass that keeps every good row (address, times, key,
    hostname, line), then the per-address history of `_History` in numpy on the rows
    sorted by address (`_kea_history`).

    A block of lines where every line has the header's number of fields, every address
    is IPv4 in normal form, every lifetime and expiry a number and every time in range
    is taken a column at a time (C loops: ``map``, slices, numpy); any other block row by
    row, as `read_kea` does.
    """
    name = str(path)
    errors: list[LeaseError] = []
    texts: list[str] = []  # the normalized address of each good row
    packed: list[bytes] = []  # its 4 bytes when it is an IPv4 address, else _NOT_V4
    other: list[int] = []  # rows whose address is not an IPv4 address
    starts: list[NDArray[np.int64]] = []  # per block
    ends: list[NDArray[np.int64]] = []  # -1: open
    nos: list[NDArray[np.int64]] = []
    keys: list[str | None] = []
    hosts: list[str | None] = []
    with _open(path) as fh:
        head = _kea_header(name, fh.readline())
        if isinstance(head, LeaseError):
            return _columns(name, [], [head])
        n, i_addr, i_valid, i_exp, i_key, i_key2, i_host, i_type, i_plen, pd = head
        bad: dict[int, LeaseError] = {}
        days, _secs = _epoch_days()
        day_of = days.get
        ip_of = _ip_cache.get
        pton, af_inet = _inet_pton, _AF_INET

        def by_columns(data: bytes, first: int) -> int:
            """Take the lines of ``data`` a column at a time: their number, or 0 (and
            nothing taken) when one is not a plain good row (or not UTF-8)."""
            try:
                block = data.decode("utf-8")
            except UnicodeDecodeError:
                return 0
            if "\r" in block:
                return 0
            count = block.count("\n") + 1
            # each line's fields, then "\n" (a cached one-character string, no copy):
            # the "\n"s all in their places = every line has the header's n fields
            flat = block.replace("\n", ",\n,").split(",")
            if len(flat) != count * (n + 1) - 1 or flat[n::n + 1].count("\n") != count - 1:
                return 0
            addr = flat[i_addr::n + 1]
            try:
                if pd:  # Kea v6: addresses (no prefixes) to normal form
                    if "2" in flat[i_type::n + 1]:
                        return 0
                    norm = list(map(ip_of, addr))
                    if None in norm:
                        norm = [x or norm_ip(a) for x, a in zip(norm, addr, strict=True)]
                    addr = cast(list[str], norm)
                    four = []  # v6 files: grouped by text (`_kea_history`)
                else:
                    four = list(map(pton, itertools.repeat(af_inet), addr))
                valid = np.array(list(map(int, flat[i_valid::n + 1])), dtype=np.int64)
                expire = np.array(list(map(int, flat[i_exp::n + 1])), dtype=np.int64)
            except (OSError, ValueError, OverflowError, BadValue):
                return 0
            if valid.min() < 0 or expire.min() < 0:
                return 0
            start = expire - valid
            open_ = valid == _INFINITE
            if start.min() < _NS_MIN_S or np.where(open_, 0, expire).max() > _NS_MAX_S:
                return 0
            host: list[str | None]
            if i_host >= 0:
                text = "\n".join(flat[i_host::n + 1])
                if "&#x" in text:
                    text = text.replace("&#x2c", ",")
                    if "&#x" in text:
                        return 0  # other escapes: row by row
                host = text.split("\n")  # type: ignore[assignment]
                if "" in host:
                    host = [h or None for h in host]
            else:
                host = [None] * count
            key: list[str | None] = flat[i_key::n + 1]  # type: ignore[assignment]
            if "" in key:
                key = ([a or b or None for a, b in zip(key, flat[i_key2::n + 1], strict=True)]
                       if i_key2 >= 0 else [a or None for a in key])
            texts.extend(addr)
            packed.extend(four)
            starts.append(start)
            ends.append(np.where(open_, -1, expire))
            nos.append(np.arange(first, first + count, dtype=np.int64))
            keys.extend(key)
            hosts.extend(host)
            return count

        no = 1
        crlf = [False]
        for data, _last in _raw_blocks(fh):
            taken = by_columns(data, no + 1)
            if taken:
                no += taken
                continue
            block = _decode_block(data, name, no + 1, bad, True, crlf)
            b_starts: list[int] = []
            b_ends: list[int] = []
            b_nos: list[int] = []
            for f in map(str.split, block, itertools.repeat(",")):
                no += 1
                if len(f) != n:
                    if f == [""]:
                        if bad:
                            err = bad.pop(no, None)
                            if err is not None:
                                errors.append(err)
                        continue
                    errors.append(LeaseError(name, no, f"{len(f)} fields, the header has {n}"))
                    continue
                try:
                    ip = f[i_addr]
                    b: bytes | None
                    try:
                        b = None if pd else pton(af_inet, ip)  # IPv4 in normal form: itself
                    except (OSError, ValueError):
                        b = None
                    if b is None:
                        ip = ip_of(ip) or norm_ip(ip)
                        if pd and f[i_type] == "2" and f[i_plen] != "128":
                            ip = _norm_prefix(f"{ip}/{f[i_plen]}")
                    valid_ = int(f[i_valid])
                    expire_ = int(f[i_exp])
                    if valid_ < 0 or expire_ < 0:
                        raise BadValue(f"negative time: {valid_}, {expire_}")
                    start_ = expire_ - valid_
                    if day_of(start_ // 86400) is None:
                        _epoch_day(days, start_)
                    if valid_ == _INFINITE:
                        end_ = -1
                    else:
                        end_ = expire_
                        if day_of(expire_ // 86400) is None:
                            _epoch_day(days, expire_)
                    if start_ < _NS_MIN_S or end_ > _NS_MAX_S:
                        raise BadValue(f"time out of the int64 ns range: {start_}, {end_}")
                except BadValue as exc:
                    errors.append(LeaseError(name, no, str(exc)))
                    continue
                except (ValueError, OverflowError):
                    errors.append(LeaseError(name, no, f"bad valid_lifetime/expire "
                                                       f"{f[i_valid]!r}, {f[i_exp]!r}"))
                    continue
                host_ = f[i_host] if i_host >= 0 else None
                if not host_:
                    host_ = None
                elif "&#x" in host_:
                    host_ = host_.replace("&#x2c", ",")
                    if "&#x" in host_:
                        host_ = _KEA_ESCAPE.sub(_kea_char, host_)
                if not pd:
                    if b is None:
                        other.append(len(texts))
                        b = _NOT_V4
                    packed.append(b)
                texts.append(ip)
                b_starts.append(start_)
                b_ends.append(end_)
                b_nos.append(no)
                keys.append(f[i_key] or (f[i_key2] if i_key2 >= 0 else "") or None)
                hosts.append(host_)
            starts.append(np.array(b_starts, dtype=np.int64))
            ends.append(np.array(b_ends, dtype=np.int64))
            nos.append(np.array(b_nos, dtype=np.int64))
    return _kea_history(name, texts, packed, other, _cat(starts), _cat(ends), keys, hosts,
                        _cat(nos), errors, wide=pd)



def _cat(parts: list[NDArray[np.int64]]) -> NDArray[np.int64]:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


_text_hash = hash  # tests make it collide


def _kea_history(name: str, texts: list[str], packed: list[bytes], other: list[int],
                 starts: NDArray[np.int64], ends: NDArray[np.int64], keys: list[str | None],
                 hosts: list[str | None], nos: NDArray[np.int64],
                 errors: list[LeaseError], wide: bool = False) -> LeaseColumns:
    """`_History` over all rows at once. Rows sorted by address (stably: file order within
    an address); a row continues the lease before it when `_History.add` would merge it:
    same address and client (not None), starts no later than the lease's end so far (the
    previous row's end) and no earlier than the lease's start. Every other row begins a
    lease, which ends the previous one of its address where it starts (if inside it)."""
    n = len(texts)
    ids: dict[str, int] = {}
    if wide:  # v6 files: the hash of the normalized text (checked below)
        addr = np.fromiter(map(_text_hash, texts), dtype=np.int64, count=n)
    else:
        addr = np.frombuffer(b"".join(packed), dtype=">u4").astype(np.int64)
    if other:
        addr[np.array(other, dtype=np.int64)] = [
            (1 << 32) + ids.setdefault(texts[i], len(ids)) for i in other]
    order = np.argsort(addr, kind="stable")
    a = addr[order]
    same = np.zeros(n, dtype=bool)  # the row before (sorted) has the same address
    same[1:] = a[1:] == a[:-1]
    if wide:
        pos = np.flatnonzero(same)
        text = np.array(texts, dtype=object)
        if not (text[order[pos]] == text[order[pos - 1]]).all():  # one hash, two texts
            addr = np.fromiter((ids.setdefault(x, len(ids)) for x in texts),
                               dtype=np.int64, count=n)
            order = np.argsort(addr, kind="stable")
            a = addr[order]
            same[1:] = a[1:] == a[:-1]
    s = starts[order]
    e = ends[order]
    has_key = np.fromiter(map(operator.is_not, keys, itertools.repeat(None)), dtype=bool,
                          count=n)[order]
    key_hash = np.fromiter(map(hash, keys), dtype=np.int64, count=n)[order]
    idx = np.arange(n, dtype=np.int64)
    merge = np.zeros(n, dtype=bool)
    merge[1:] = (same[1:] & has_key[1:] & (key_hash[1:] == key_hash[:-1])
                 & ((e[:-1] == -1) | (s[1:] <= e[:-1])))
    for i in np.flatnonzero(merge):  # equal hashes: the keys themselves must be equal
        if keys[order[i]] != keys[order[i - 1]]:
            merge[i] = False
    head = ~merge
    while True:  # a merge must also not start before the lease's first row
        first = np.maximum.accumulate(np.where(head, idx, 0))
        late = np.flatnonzero(~head & (s < s[first]))
        if not len(late):
            break
        keep = np.ones(len(late), dtype=bool)  # the first such row after each head
        keep[1:] = first[late[1:]] != first[late[:-1]]
        head[late[keep]] = True
    hp = np.flatnonzero(head)  # sorted positions of the rows that begin a lease
    last = np.empty(len(hp), dtype=np.int64)  # ... and of their lease's last row
    last[:-1] = hp[1:] - 1
    if len(hp):
        last[-1] = n - 1
    start = s[hp]
    end = e[last]
    nxt = np.empty(len(hp), dtype=np.int64)  # the next head of the same address, or -1
    nxt[:-1] = np.where(same[hp[1:]], hp[1:], -1)
    if len(hp):
        nxt[-1] = -1
    superseded = nxt >= 0
    s2 = s[np.where(superseded, nxt, 0)]
    cut = superseded & (start <= s2) & ((end == -1) | (s2 < end))
    end = np.where(cut, s2, end)
    host_row = np.maximum.accumulate(np.where(
        np.fromiter(map(operator.is_not, hosts, itertools.repeat(None)), dtype=bool,
                    count=n)[order], idx, -1))[last]
    # output order of `read_kea`: a superseded lease when the row that supersedes it is
    # read, the others at the end in the order their address first appeared
    group_first = np.maximum.accumulate(np.where(~same, idx, 0))[hp]
    when = np.where(superseded, order[np.where(superseded, nxt, 0)],
                    order[group_first] + n)
    out = np.argsort(when, kind="stable")
    hp, start, end, host_row = hp[out], start[out], end[out], host_row[out]
    rows = order[hp]
    ip4 = None if other or wide else a[hp].astype(np.uint32)
    none = np.full(len(hp), -1, dtype=np.int64)
    host_of = np.where(host_row >= hp, order[np.maximum(host_row, 0)], -1)
    hosts.append(None)  # row -1: no hostname
    return LeaseColumns(
        name, Picked(texts, rows), start * 1_000_000_000,
        np.where(end == -1, OPEN_NS, end * 1_000_000_000),
        Picked(keys, rows), Picked(hosts, host_of), nos[rows], none, none.copy(), ip4,
        errors)



# ---------------------------------------------------------------- FreeRADIUS radacct CSV

_NULLS = frozenset(("", "NULL", "null", "\\N", "0000-00-00 00:00:00"))
RADACCT_ADDRESS_COLUMNS = ("framedipaddress", "framedipv6address", "delegatedipv6prefix")


def _csv_row(first: str, no: int, lines: Iterator[str], delimiter: str,
             tail: list[int]) -> tuple[list[str] | str, int]:
    """One CSV row by the `csv` module, from line ``first`` (number ``no``) and as many
    of ``lines`` as a quoted field spans: (the row or, when `csv` rejects it, the
    reason; the number of the row's last line). Each line goes to `csv` with the ``\\n``
    it had in the file (``tail``: see `_blocks`).
    """
    end = no

    def feed() -> Iterator[str]:
        nonlocal end
        yield first if tail and tail[0] == no else first + "\n"
        for line in lines:
            end += 1
            yield line if tail and tail[0] == end else line + "\n"

    try:
        row = next(csv.reader(feed(), delimiter=delimiter), [])
    except csv.Error as exc:
        return f"bad CSV: {exc}", end
    return row, end


def read_radacct(path: Path) -> Iterator[LeaseItem]:
    """FreeRADIUS ``radacct`` rows exported as CSV with a header: one lease per address.

    A line without ``"`` (or a stray ``\\r``) is split at the delimiter, which is what
    `csv` makes of it; any other line (and the header) goes through `csv`.
    """
    name = str(path)
    bad: dict[int, LeaseError] = {}
    with _open(path) as fh:
        tail: list[int] = []
        lines = itertools.chain.from_iterable(_blocks(fh, name, 1, bad, tail=tail,
                                                      csv_crlf=True))
        first = next(lines, "")
        delimiter = "\t" if "\t" in first else ","
        header, no = _csv_row(first, 1, lines, delimiter, tail)
        if bad:
            for i in sorted(k for k in bad if k <= no):
                yield bad.pop(i)
        if isinstance(header, str):
            header = []
        col = {c.strip().lower(): i for i, c in enumerate(header)}
        addr_cols = [col[c] for c in RADACCT_ADDRESS_COLUMNS if c in col]
        if "acctstarttime" not in col or not addr_cols:
            yield LeaseError(name, 1, "not a radacct header (needs acctstarttime and "
                                      "framedipaddress)")
            return
        i_start = col["acctstarttime"]
        i_stop = col.get("acctstoptime", -1)
        i_user = col.get("username", -1)
        i_calling = col.get("callingstationid", -1)
        n = len(header)
        i_addr, more_cols = addr_cols[0], addr_cols[1:]
        nulls = _NULLS
        ip_of = _ip_cache.get
        pton, af_inet = _inet_pton, _AF_INET
        iso = datetime.fromisoformat
        utc = UTC
        last_start: str | None = None  # the text of the previous row's start, and its time
        last_stop: str | None = None
        last_start_time = last_stop_time = datetime(1970, 1, 1, tzinfo=UTC)
        for line in lines:
            no += 1
            if not line:
                if bad:
                    err = bad.pop(no, None)
                    if err is not None:
                        yield err
                continue
            if '"' in line or "\r" in line:
                if '"' not in line and "\r" not in line.rstrip("\r"):
                    line = line.rstrip("\r")  # a CRLF line end
                    if not line:
                        continue
                    row = line.split(delimiter)
                else:
                    first_no = no
                    got, no = _csv_row(line, no, lines, delimiter, tail)
                    if bad:
                        for i in sorted(k for k in bad if first_no <= k <= no):
                            yield bad.pop(i)
                    if isinstance(got, str):
                        yield LeaseError(name, no, got)
                        continue
                    if not got:
                        continue
                    row = got
            else:
                row = line.split(delimiter)
            if len(row) != n:
                yield LeaseError(name, no, f"{len(row)} fields, the header has {n}")
                continue
            try:
                text = row[i_start]
                if text == last_start:  # logs in time order: the same second again
                    start = last_start_time
                else:
                    try:  # `parse_iso`, its common case inlined
                        start = iso(text)
                    except ValueError:
                        raise BadValue(f"bad timestamp {text[:64]!r}") from None
                    if start.tzinfo is not utc:
                        start = parse_iso(text)
                    last_start, last_start_time = text, start
                text = row[i_stop] if i_stop >= 0 else ""
                if text in nulls:
                    end = None
                else:
                    if text == last_stop:
                        end = last_stop_time
                    else:
                        try:
                            end = iso(text)
                        except ValueError:
                            raise BadValue(f"bad timestamp {text[:64]!r}") from None
                        if end.tzinfo is not utc:
                            end = parse_iso(text)
                        last_stop, last_stop_time = text, end
                    if end < start:
                        raise BadValue("acctstoptime before acctstarttime")
                ip = row[i_addr]  # the first address column, then any others
                if ip in nulls:
                    ip = ""
                else:
                    try:
                        pton(af_inet, ip)  # IPv4 in normal form: itself
                    except (OSError, ValueError):
                        ip = ip_of(ip) or (norm_ip(ip) if "/" not in ip else _norm_prefix(ip))
                more = None
                for i in more_cols:
                    value = row[i]
                    if value not in nulls:
                        try:
                            pton(af_inet, value)
                        except (OSError, ValueError):
                            value = ip_of(value) or (norm_ip(value) if "/" not in value
                                                     else _norm_prefix(value))
                        if more is None:
                            more = [value]
                        else:
                            more.append(value)
            except BadValue as exc:
                yield LeaseError(name, no, str(exc))
                continue
            user = row[i_user] if i_user >= 0 else ""
            if user in nulls:
                user = row[i_calling] if i_calling >= 0 else ""
            key = None if user in nulls else user
            if more is None:
                if ip:
                    yield Lease(ip, start, end, key, f"{name}:{no}")
                else:
                    yield LeaseError(name, no, "session without a framed address")
                continue
            source = f"{name}:{no}"
            if ip:
                yield Lease(ip, start, end, key, source)
            for ip in more:
                yield Lease(ip, start, end, key, source)


# ---------------------------------------------------------------- FreeRADIUS detail

_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_UTC_NAMES = frozenset(("UTC", "GMT", "Z", "+0000", "UCT"))
_DETAIL_DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$")
_STATUS = {"1": "Start", "2": "Stop", "3": "Interim-Update", "7": "Accounting-On",
           "8": "Accounting-Off", "Alive": "Interim-Update"}


def _radius_time(value: str) -> datetime | None:
    """Event-Timestamp: epoch seconds, ISO 8601, or ``Nov 26 2026 01:00:00 UTC``; None
    when it is in a zone this reader cannot convert."""
    if value.isdecimal():
        return _from_epoch(int(value))
    parts = value.split()
    if len(parts) == 5 and parts[0] in _MONTHS:
        if parts[4] not in _UTC_NAMES:
            return None
        try:
            hh, mm, ss = parts[3].split(":")
            return datetime(int(parts[2]), _MONTHS[parts[0]], int(parts[1]), int(hh), int(mm),
                            int(ss), tzinfo=UTC)
        except ValueError:
            raise BadValue(f"bad Event-Timestamp {value[:64]!r}") from None
    when = parse_iso(value)
    return when


@dataclass(slots=True)
class _Session:
    start: datetime
    ip: str | None
    user: str | None
    nas: str
    line: int


def read_radius_detail(path: Path) -> Iterator[LeaseItem]:
    """FreeRADIUS ``detail`` accounting file: Start and Stop paired into leases."""
    name = str(path)
    sessions: dict[str, _Session] = {}
    attrs: dict[str, str] = {}
    block_line = 0

    def finish() -> Iterator[LeaseItem]:
        try:
            yield from _detail_record(name, block_line, attrs, sessions)
        except BadValue as exc:
            yield LeaseError(name, block_line, str(exc))
        except OverflowError:
            yield LeaseError(name, block_line, "time out of range")
        attrs.clear()

    with _open(path) as fh:
        for no, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                yield _bad_utf8(name, no, raw)
                continue
            s = line.strip()
            if not s:
                if block_line:
                    yield from finish()
                    block_line = 0
                continue
            if line[0] not in " \t":  # the date line that begins a record
                if block_line:
                    yield from finish()
                block_line = no
                if not _DETAIL_DATE.match(s):
                    yield LeaseError(name, no, f"not a detail record date line: {s[:64]!r}")
                continue
            attr, sep, value = s.partition(" = ")
            if not sep or not block_line:
                yield LeaseError(name, no, f"not an 'Attribute = value' line: {s[:64]!r}")
                continue
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            attrs[attr] = value
        if block_line:
            yield from finish()
    for sess in sorted(sessions.values(), key=lambda x: x.line):
        if sess.ip is None:
            yield LeaseError(name, sess.line, "open session without Framed-IP-Address")
        else:
            yield Lease(sess.ip, sess.start, None, sess.user, f"{name}:{sess.line}")


def _detail_record(name: str, line: int, attrs: dict[str, str],
                   sessions: dict[str, _Session]) -> Iterator[LeaseItem]:
    status = attrs.get("Acct-Status-Type")
    if status is None:
        yield LeaseError(name, line, "not an accounting record (no Acct-Status-Type)")
        return
    status = _STATUS.get(status, status)
    when: datetime | None = None
    if "Event-Timestamp" in attrs:
        when = _radius_time(attrs["Event-Timestamp"])
    if when is None and attrs.get("Timestamp", "").isdecimal():
        when = _from_epoch(int(attrs["Timestamp"]))
    if when is None:
        raise BadValue("no usable time (Event-Timestamp not in UTC and no Timestamp)")
    nas = attrs.get("NAS-IP-Address") or attrs.get("NAS-Identifier") or ""
    if status in ("Accounting-On", "Accounting-Off"):  # the NAS (re)started: all ended
        for key in [k for k, v in sessions.items() if v.nas == nas]:
            yield from _close(name, sessions.pop(key), when)
        return
    if status not in ("Start", "Stop", "Interim-Update"):
        yield LeaseError(name, line, f"unknown Acct-Status-Type {status[:32]!r}")
        return
    unique = attrs.get("Acct-Unique-Session-Id")
    sid = attrs.get("Acct-Session-Id")
    if unique is None and sid is None:
        yield LeaseError(name, line, f"{status} without Acct-Session-Id")
        return
    key = unique if unique is not None else f"{nas}\x1f{sid}"
    ip_text = attrs.get("Framed-IP-Address") or attrs.get("Framed-IPv6-Address")
    ip = norm_ip(ip_text) if ip_text else None
    user = attrs.get("User-Name") or attrs.get("Calling-Station-Id") or None
    known = sessions.get(key)
    if status == "Start":
        if known is not None:
            if known.start == when and known.ip == ip:
                return  # a retransmitted Start
            yield LeaseError(name, line, f"Start of session {sid!r} that is already open "
                                         f"(since line {known.line}); both kept")
            yield from _close(name, known, None)
        sessions[key] = _Session(when, ip, user, nas, line)
        return
    if known is None:  # a Stop or Interim-Update of a session whose Start we did not see
        since = attrs.get("Acct-Session-Time", "")
        start = when - timedelta(seconds=int(since)) if since.isdecimal() else None
        if status == "Interim-Update":
            sessions[key] = _Session(start or when, ip, user, nas, line)
            return
        yield LeaseError(name, line, f"Stop without a Start for session {sid!r}"
                         + ("" if start else " and no Acct-Session-Time"))
        if start is not None and ip is not None:
            yield Lease(ip, start, when, user, f"{name}:{line}")
        return
    known.ip = known.ip or ip
    known.user = known.user or user
    if status == "Stop":
        del sessions[key]
        yield from _close(name, known, when)


def _close(name: str, sess: _Session, end: datetime | None) -> Iterator[LeaseItem]:
    if sess.ip is None:
        yield LeaseError(name, sess.line, "session without Framed-IP-Address")
    else:
        yield Lease(sess.ip, sess.start, end if end is None or end >= sess.start else sess.start,
                    sess.user, f"{name}:{sess.line}")


# ---------------------------------------------------------------- CGNAT port blocks

_CGNAT_LINE = re.compile(r"\S+\s+(?:ALLOC|RELEASE)\s+\S+\s+\S+\s+\d+-\d+(?:\s+\S+)?\s*$")


def read_cgnat(path: Path) -> Iterator[LeaseItem]:
    """CGNAT port-block log: ALLOC/RELEASE pairs -> leases of (public ip, port range)."""
    name = str(path)
    blocks: dict[tuple[str, int, int], tuple[Lease, str]] = {}
    ranges: dict[str, tuple[int, int]] = {}  # port range text -> (first, last), when good
    last_text, last_time = "", datetime(1970, 1, 1, tzinfo=UTC)
    bad: dict[int, LeaseError] = {}
    ip_of = _ip_cache.get
    pton, af_inet = _inet_pton, _AF_INET
    iso = datetime.fromisoformat
    utc = UTC
    tail: list[int] = []
    no = 0
    with _open(path) as fh:
        for line in itertools.chain.from_iterable(_blocks(fh, name, 1, bad, tail=tail)):
            no += 1
            f = line.split()
            if not f:
                if bad and not line:
                    err = bad.pop(no, None)
                    if err is not None:
                        yield err
                continue
            if f[0][0] == "#":
                continue
            if len(f) not in (5, 6):
                if not (tail and tail[0] == no):
                    line += "\n"  # as it was in the file
                yield LeaseError(name, no, f"{len(f)} fields, expected 5 or 6: {line[:64]!r}")
                continue
            try:
                text = f[0]
                if text == last_text:
                    when = last_time
                else:
                    try:
                        when = iso(text)
                    except ValueError:
                        raise BadValue(f"bad timestamp {text[:64]!r}") from None
                    if when.tzinfo is not utc:
                        when = parse_iso(text)
                    last_text, last_time = text, when
                inside = f[2]
                try:
                    pton(af_inet, inside)  # IPv4 in normal form: itself
                except (OSError, ValueError):
                    inside = ip_of(inside) or norm_ip(inside)
                public = f[3]
                try:
                    pton(af_inet, public)
                except (OSError, ValueError):
                    public = ip_of(public) or norm_ip(public)
                ports = ranges.get(f[4])
                if ports is None:
                    first, dash, last = f[4].partition("-")
                    if not (dash and first.isdecimal() and last.isdecimal()):
                        raise BadValue(f"bad port range {f[4][:32]!r}")
                    ports = (int(first), int(last))
                    if not 0 <= ports[0] <= ports[1] <= 65535:
                        raise BadValue(f"bad port range {f[4][:32]!r}")
                    if len(ranges) >= 65536:
                        ranges.clear()
                    ranges[f[4]] = ports
            except BadValue as exc:
                yield LeaseError(name, no, str(exc))
                continue
            p0, p1 = ports
            key = (public, p0, p1)
            action = f[1]
            if action == "ALLOC":
                old = blocks.get(key)
                if old is not None:
                    yield LeaseError(name, no, f"ALLOC of {public} {p0}-{p1} that was not "
                                               f"released (allocated at {old[0].source})")
                    yield old[0]
                sub = f[5] if len(f) == 6 else inside
                blocks[key] = (Lease(public, when, None, sub, f"{name}:{no}", p0, p1), inside)
            elif action == "RELEASE":
                old = blocks.get(key)
                if old is None:
                    yield LeaseError(name, no, f"RELEASE of {public} {p0}-{p1} without ALLOC")
                elif old[1] != inside:
                    yield LeaseError(name, no, f"RELEASE of {public} {p0}-{p1} for {inside}, "
                                               f"allocated to {old[1]} at {old[0].source}")
                elif when < old[0].start:
                    yield LeaseError(name, no, "RELEASE before its ALLOC")
                else:
                    del blocks[key]
                    old[0].end = when
                    yield old[0]
            else:
                yield LeaseError(name, no, f"unknown action {action[:16]!r} (ALLOC or RELEASE)")
    for lease, _inside in blocks.values():
        yield lease


# ---------------------------------------------------------------- detection

READERS: dict[str, Reader] = {
    "dhcpd": read_dhcpd,
    "kea": read_kea,
    "radacct": read_radacct,
    "radius-detail": read_radius_detail,
    "cgnat": read_cgnat,
}
_DHCPD_START = re.compile(r"(lease\s+\S+\s*\{|authoring-byte-order\s|server-duid\s|"
                          r"failover\s+peer\s|host\s+\S+\s*\{|ia-(na|ta|pd)\s)")


def detect_format(head: bytes) -> str | None:
    """The format of a lease log from its first bytes, or None."""
    text = head.decode("utf-8", "replace")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return None
    first = lines[0].strip()
    low = first.lower()
    if low.startswith("address,") and ("duid" in low or "hwaddr" in low):
        return "kea"
    cols = {c.strip().strip('"') for c in re.split(r"[,\t]", low)}
    if "acctstarttime" in cols and cols & set(RADACCT_ADDRESS_COLUMNS):
        return "radacct"
    if "dhcpd.leases" in text or any(
        _DHCPD_START.match(ln.strip()) for ln in lines[:50] if not ln.lstrip().startswith("#")
    ):
        return "dhcpd"
    data = [ln for ln in lines if not ln.lstrip().startswith("#")]
    if data and _DETAIL_DATE.match(data[0].strip()) and len(data) > 1 and \
            data[1][:1] in " \t" and " = " in data[1]:
        return "radius-detail"
    if data and _CGNAT_LINE.match(data[0].strip()):
        return "cgnat"
    return None


def _detect_file(path: Path) -> str | None:
    with _open(path) as fh:
        head = fh.read(_HEAD)
    return detect_format(head)


def open_leases(path: Path | str, fmt: str | None = None) -> Iterator[LeaseItem]:
    """Read a lease log: ``fmt`` one of ``FORMATS``, or None to detect it from content.

    An unknown ``fmt`` raises ValueError; content that is no known format yields one
    `LeaseError` (line 1) and nothing else.
    """
    path = Path(path)
    if fmt is not None and fmt not in READERS:
        raise ValueError(f"unknown lease format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt is None:
        fmt = _detect_file(path)
        if fmt is None:
            return iter([LeaseError(str(path), 1, "not a lease log format this reader knows "
                                                  f"({', '.join(FORMATS)})")])
    return READERS[fmt](path)


def read_all(paths: Iterable[Path | str], fmt: str | None = None) -> Iterator[LeaseItem]:
    """Items of several lease logs, one after the other."""
    for path in paths:
        yield from open_leases(path, fmt)
