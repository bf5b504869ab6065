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
(not only per-address state) and does the DHCP history in numpy, and for radacct one
that takes plain blocks a column at a time (times of the usual ISO forms parsed by
numpy) and reads any other row or block with the streaming reader's code.

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

import collections
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

    Kea and radacct files have readers of their own (the goal of issue #5: >= 500,000
    lines/s, which the streaming readers miss: Kea's per-address history is bound by
    memory, radacct spends its time on `Lease` objects and datetimes); the Kea one holds
    the whole file as columns, not per-address state. Their times must fit int64 ns
    (years 1678-2261): a row outside is an error here (`open_leases` takes it). The other
    formats are read by `open_leases` and turned into columns.
    """
    path = Path(path)
    kind = fmt if fmt is not None else _detect_file(path)
    if kind == "kea":
        return _kea_columns(path)
    if kind == "radacct":
        return _radacct_columns(path)
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


def _ints(texts: list[str]) -> NDArray[np.int64]:
    """``[int(x) for x in texts]`` as int64 (ValueError, OverflowError as `int` and numpy
    raise them); texts of ASCII digits all of one width (up to 18) are read by numpy."""
    count = len(texts)
    size = len(texts[0]) if count else 0
    if size and texts[-1] == texts[0] and texts.count(texts[0]) == count:  # one value
        return np.full(count, int(texts[0]), dtype=np.int64)
    if 0 < size <= 18:
        arr = np.frombuffer(("\n".join(texts) + "\n").encode("utf-8"), dtype=np.uint8)
        # texts have no "\n": all are `size` bytes when the "\n"s are where they would be
        if len(arr) == count * (size + 1) and (arr[size::size + 1] == 10).all():
            m = arr.reshape(count, size + 1)[:, :size] - np.uint8(48)  # below "0" wraps
            if not (m > 9).any():
                value = m[:, 0].astype(np.int64)
                for i in range(1, size):
                    value = value * 10 + m[:, i]
                return value
    return np.fromiter(map(int, texts), dtype=np.int64, count=count)


def _kea_columns(path: Path) -> LeaseColumns:
    """`read_kea` as columns: one pass that keeps every good row (address, times, key,
    hostname, line), then the per-address history of `_History` in numpy on the rows
    sorted by address (`_kea_history`).

    A block of lines where every line has the header's number of fields, every address
    is IPv4 in normal form (v4 files) or an address (v6 files, no prefixes), every
    lifetime and expiry a number and every time in range is taken a column at a time (C
    loops: ``map``, slices, numpy); any other block row by row, as `read_kea` does. In a
    v6 file each row gets the id of its address in normal form (a dict from the text as
    written, so that each text is normalized once per file), and rows are grouped by id.
    """
    name = str(path)
    errors: list[LeaseError] = []
    texts: list[str] = []  # the normalized address of each good row (v4 files)
    addr_ids: list[NDArray[np.int64]] = []  # per block, the id of each row's address (v6)
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
        # v6 files: rows are grouped by an id per address (prefix), given in the order
        # the normal forms are first seen; the texts as written map to it too
        norm_ids: dict[str, int] = {}
        raw_ids: dict[str, int] = {}
        id_of = raw_ids.get

        def _kea_id(text: str) -> int:
            value = raw_ids[text] = norm_ids.setdefault(ip_of(text) or norm_ip(text),
                                                        len(norm_ids))
            return value

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
            ids = np.zeros(0, dtype=np.int64)
            four: list[bytes] = []
            try:
                if pd:  # Kea v6: each address text to the id of its normal form
                    if "2" in flat[i_type::n + 1]:  # lease_type 2: prefixes, row by row
                        return 0
                    got = list(map(id_of, addr))
                    if None in got:  # texts not seen before
                        for i in itertools.compress(range(count), map(
                                operator.is_, got, itertools.repeat(None))):
                            got[i] = _kea_id(addr[i])
                    ids = np.array(got, dtype=np.int64)
                else:
                    four = list(map(pton, itertools.repeat(af_inet), addr))
                valid = _ints(flat[i_valid::n + 1])
                expire = _ints(flat[i_exp::n + 1])
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
            if pd:
                addr_ids.append(ids)
            else:
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
            b_ids: list[int] = []
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
                if pd:
                    b_ids.append(norm_ids.setdefault(ip, len(norm_ids)))
                else:
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
            if pd:
                addr_ids.append(np.array(b_ids, dtype=np.int64))
    if pd:
        return _kea_history(name, list(norm_ids), [], [], _cat(starts), _cat(ends), keys,
                            hosts, _cat(nos), errors, ids=_cat(addr_ids))
    return _kea_history(name, texts, packed, other, _cat(starts), _cat(ends), keys, hosts,
                        _cat(nos), errors)



def _cat(parts: list[NDArray[np.int64]]) -> NDArray[np.int64]:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _stable_argsort(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    """``np.argsort(keys, kind="stable")``; keys of 0 to 2**32 - 1 as one or two radix
    sorts of 16 bits (numpy sorts 16-bit keys by radix, several times faster)."""
    if not len(keys) or keys.min() < 0 or keys.max() >= 1 << 32:
        return np.argsort(keys, kind="stable").astype(np.int64)
    low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if keys.max() < 1 << 16:
        return low.astype(np.int64)
    high = (keys[low] >> 16).astype(np.uint16)
    return low[np.argsort(high, kind="stable")].astype(np.int64)


def _kea_history(name: str, texts: list[str], packed: list[bytes], other: list[int],
                 starts: NDArray[np.int64], ends: NDArray[np.int64], keys: list[str | None],
                 hosts: list[str | None], nos: NDArray[np.int64],
                 errors: list[LeaseError], ids: NDArray[np.int64] | None = None
                 ) -> LeaseColumns:
    """`_History` over all rows at once. Rows sorted by address (stably: file order within
    an address); a row continues the lease before it when `_History.add` would merge it:
    same address and client (not None), starts no later than the lease's end so far (the
    previous row's end) and no earlier than the lease's start. Every other row begins a
    lease, which ends the previous one of its address where it starts (if inside it).

    Addresses: ``packed`` (4 bytes per row; ``other``: rows that are not IPv4, by
    ``texts``), or with ``ids`` (v6 files) the index of each row's address in ``texts``."""
    if ids is not None:
        n = len(ids)
        addr = ids
    else:
        n = len(texts)
        names: dict[str, int] = {}
        addr = np.frombuffer(b"".join(packed), dtype=">u4").astype(np.int64)
        if other:
            addr[np.array(other, dtype=np.int64)] = [
                (1 << 32) + names.setdefault(texts[i], len(names)) for i in other]
    order = _stable_argsort(addr)
    a = addr[order]
    same = np.zeros(n, dtype=bool)  # the row before (sorted) has the same address
    same[1:] = a[1:] == a[:-1]
    s = starts[order]
    e = ends[order]
    has_key = (np.fromiter(map(operator.is_not, keys, itertools.repeat(None)), dtype=bool,
                           count=n)[order] if None in keys else np.ones(n, dtype=bool))
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
    has_host = (np.fromiter(map(operator.is_not, hosts, itertools.repeat(None)), dtype=bool,
                            count=n)[order] if None in hosts else np.ones(n, dtype=bool))
    host_row = np.maximum.accumulate(np.where(has_host, idx, -1))[last]
    # output order of `read_kea`: a superseded lease when the row that supersedes it is
    # read, the others at the end in the order their address first appeared
    group_first = np.maximum.accumulate(np.where(~same, idx, 0))[hp]
    when = np.where(superseded, order[np.where(superseded, nxt, 0)],
                    order[group_first] + n)
    out = _stable_argsort(when)
    hp, start, end, host_row = hp[out], start[out], end[out], host_row[out]
    rows = order[hp]
    ip4 = None if other or ids is not None else a[hp].astype(np.uint32)
    none = np.full(len(hp), -1, dtype=np.int64)
    host_of = np.where(host_row >= hp, order[np.maximum(host_row, 0)], -1)
    hosts.append(None)  # row -1: no hostname
    return LeaseColumns(
        name, Picked(texts, rows if ids is None else a[hp]), start * 1_000_000_000,
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


_RadacctHeader = tuple[str, int, int, int, int, int, int, tuple[int, ...]]
# delimiter, number of columns, acctstarttime, acctstoptime, username, callingstationid,
# the first address column, the other address columns (-1: no such column)


def _radacct_header(name: str, lines: Iterator[str], bad: dict[int, LeaseError],
                    tail: list[int]) -> tuple[list[LeaseError], _RadacctHeader | None, int]:
    """The header row from ``lines``: (its errors, its columns or None when it is not a
    radacct header, the number of its last line)."""
    first = next(lines, "")
    delimiter = "\t" if "\t" in first else ","
    header, no = _csv_row(first, 1, lines, delimiter, tail)
    errors = [bad.pop(i) for i in sorted(k for k in bad if k <= no)] if bad else []
    if isinstance(header, str):
        header = []
    col = {c.strip().lower(): i for i, c in enumerate(header)}
    addr_cols = [col[c] for c in RADACCT_ADDRESS_COLUMNS if c in col]
    if "acctstarttime" not in col or not addr_cols:
        errors.append(LeaseError(name, 1, "not a radacct header (needs acctstarttime and "
                                          "framedipaddress)"))
        return errors, None, no
    return errors, (delimiter, len(header), col["acctstarttime"], col.get("acctstoptime", -1),
                    col.get("username", -1), col.get("callingstationid", -1), addr_cols[0],
                    tuple(addr_cols[1:])), no


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
        errors, head, no = _radacct_header(name, lines, bad, tail)
        yield from errors
        if head is not None:
            yield from _radacct_rows(name, head, lines, lines, no, bad, tail)


def _radacct_rows(name: str, head: _RadacctHeader, lines: Iterable[str], rest: Iterator[str],
                  no: int, bad: dict[int, LeaseError],
                  tail: list[int]) -> Iterator[LeaseItem]:
    """The items of the rows of ``lines`` (``no``: the number of the line before them); a
    quoted field that goes on past a line takes the next lines from ``rest`` (for
    `read_radacct`, ``lines`` itself)."""
    delimiter, n, i_start, i_stop, i_user, i_calling, i_addr, more_cols = head
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
                got, no = _csv_row(line, no, rest, delimiter, tail)
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


# ---------------------------------------------------------------- radacct as columns

def _iso_forms() -> dict[int, list[str]]:
    """The ISO 8601 texts the columnar radacct reader parses itself, by length: ``d`` a
    digit, ``_`` the ``T`` or space between date and time, ``+`` a sign."""
    forms: dict[int, list[str]] = {}
    for frac in ["", *("." + "d" * k for k in range(1, 7))]:
        for zone in ("", "Z", "+dd", "+dd:dd", "+dddd"):
            form = "dddd-dd-dd_dd:dd:dd" + frac + zone
            forms.setdefault(len(form), []).append(form)
    return forms


_ISO_FORMS = _iso_forms()
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _iso_form(m: NDArray[np.uint8], form: str
              ) -> tuple[NDArray[np.bool_], NDArray[np.int64]] | None:
    """Rows of ``m`` (texts of ``len(form)`` ASCII bytes) that are ``form`` with a date of
    the years 1700-2200 and fields in range (a text `datetime.fromisoformat` takes, and
    reads the same), and their times in ns since the epoch (UTC; no offset: UTC); None
    when no row is."""
    good = np.ones(len(m), dtype=bool)
    for i, c in enumerate(form):
        if c == "_":
            good &= (m[:, i] == 32) | (m[:, i] == 84)
        elif c == "+":
            good &= (m[:, i] == 43) | (m[:, i] == 45)
        elif c != "d":
            good &= m[:, i] == ord(c)
    if not good.any():
        return None
    digit = [i for i, c in enumerate(form) if c == "d"]
    good &= ((m[:, digit] - np.uint8(48)) <= 9).all(axis=1)  # uint8: below "0" wraps

    def num(a: int, b: int) -> NDArray[np.int64]:
        value = m[:, a].astype(np.int64) - 48
        for i in range(a + 1, b):
            value = value * 10 + m[:, i] - 48
        return value

    year, month, day = num(0, 4), num(5, 7), num(8, 10)
    hour, minute, second = num(11, 13), num(14, 16), num(17, 19)
    good &= ((year >= 1700) & (year <= 2200) & (month >= 1) & (month <= 12) & (day >= 1)
             & (hour <= 23) & (minute <= 59) & (second <= 59))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    good &= day <= _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    at = 19
    ns = np.zeros(len(m), dtype=np.int64)
    if form[at:at + 1] == ".":
        k = len(form) - len(form[at + 1:].lstrip("d")) - at - 1
        ns = num(at + 1, at + 1 + k) * 10 ** (9 - k)
        at += 1 + k
    zone = form[at:]
    offset = 0
    if zone.startswith("+"):
        oh = num(at + 1, at + 3)
        om = (num(at + 4, at + 6) if zone == "+dd:dd" else
              num(at + 3, at + 5) if zone == "+dddd" else np.zeros(len(m), dtype=np.int64))
        good &= (oh <= 23) & (om <= 59)
        offset = np.where(m[:, at] == 45, -1, 1) * (oh * 3600 + om * 60)
    # days since 1970-01-01 of the proleptic Gregorian date (years >= 1 here)
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset
    return good, seconds * 1_000_000_000 + ns


def _iso_ns(texts: list[str]) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """The texts `_iso_form` reads (True) and their times in ns; the others (False) are
    for `parse_iso`, row by row."""
    count = len(texts)
    ok = np.zeros(count, dtype=bool)
    ns = np.zeros(count, dtype=np.int64)
    if not count:
        return ok, ns
    size = len(texts[0])
    raw = "\n".join(texts).encode("utf-8")
    arr = np.frombuffer(raw + b"\n", dtype=np.uint8)
    # texts have no "\n": all are `size` bytes when the "\n"s are where they would be
    groups: list[tuple[int, NDArray[np.int64] | None, NDArray[np.uint8]]] = []
    if len(arr) == count * (size + 1) and (arr[size::size + 1] == 10).all():
        groups.append((size, None, arr.reshape(count, size + 1)))
    else:
        lens = np.fromiter(map(len, texts), dtype=np.int64, count=count)
        if not raw.isascii():  # texts not ASCII: row by row
            lens[~np.fromiter(map(str.isascii, texts), dtype=bool, count=count)] = -1
        for size in np.unique(lens).tolist():
            if size in _ISO_FORMS:
                picked = np.flatnonzero(lens == size).astype(np.int64)
                raw = "".join([texts[i] for i in picked.tolist()]).encode("utf-8")
                groups.append((size, picked, np.frombuffer(raw, dtype=np.uint8).reshape(
                    len(picked), size)))
    for size, rows, m in groups:
        for form in _ISO_FORMS.get(size, ()):
            got = _iso_form(m, form)
            if got is None:
                continue
            hit, value = got
            if rows is None:
                ok |= hit
                ns = np.where(hit, value, ns)
            else:
                take = rows[hit]
                ok[take] = True
                ns[take] = value[hit]
    return ok, ns


def _null_mask(texts: list[str]) -> NDArray[np.bool_]:
    """Which texts are in `_NULLS` (one search of the joined texts when none is)."""
    joined = "\n" + "\n".join(texts) + "\n"
    if any(f"\n{x}\n" in joined for x in _NULLS if x):
        return np.fromiter(map(_NULLS.__contains__, texts), dtype=bool, count=len(texts))
    if "\n\n" in joined:
        return np.fromiter(map(operator.not_, texts), dtype=bool, count=len(texts))
    return np.zeros(len(texts), dtype=bool)


_NS_LOW, _NS_HIGH = -(2**63), 2**63 - 1


def _radacct_columns(path: Path) -> LeaseColumns:
    """`read_radacct` as columns. A block of lines without ``"`` (and no ``\\r`` but in
    CRLF line ends) in which every line has the header's number of fields is taken a
    column at a time: the times of ISO texts of the usual forms (`_iso_form`), IPv4
    addresses by `socket.inet_pton` over the column; a row with anything else in a time
    or an address is read by `_radacct_rows` (its items then go in their place). Other
    blocks are read by `_radacct_rows` as a whole, as `read_radacct` reads them."""
    name = str(path)
    bad: dict[int, LeaseError] = {}
    tail: list[int] = []
    crlf = [True]
    buf: collections.deque[str] = collections.deque()
    fed = 0  # lines read so far
    errors: list[LeaseError] = []
    ips: list[str] = []
    keys: list[str | None] = []
    starts: list[NDArray[np.int64]] = []
    ends: list[NDArray[np.int64]] = []
    nos: list[NDArray[np.int64]] = []
    four: list[NDArray[np.uint32]] = []
    all_v4 = [True]
    pton, af_inet = _inet_pton, _AF_INET
    ip_of = _ip_cache.get
    nulls = _NULLS

    with _open(path) as fh:
        raw = _raw_blocks(fh)

        def fetch() -> bool:
            nonlocal fed
            got = next(raw, None)
            if got is None:
                return False
            data, last = got
            if last:
                tail.append(fed + 1)
            lines = _decode_block(data, name, fed + 1, bad, False, crlf)
            fed += len(lines)
            buf.extend(lines)
            return True

        def take() -> Iterator[str]:
            while buf:
                yield buf.popleft()

        def rest() -> Iterator[str]:
            while True:
                while buf:
                    yield buf.popleft()
                if not fetch():
                    return

        errors, head, _no = _radacct_header(name, rest(), bad, tail)
        if head is None:
            return _columns(name, [], errors)
        delimiter, n, i_start, i_stop, i_user, i_calling, i_addr, more_cols = head
        addr_cols = (i_addr, *more_cols)

        def add(items: Iterable[LeaseItem], errs: list[LeaseError]) -> tuple[
                list[str], list[str | None], list[int], list[int], list[int]]:
            """Items of `_radacct_rows`: the leases as lists, the errors to ``errs``; a
            time int64 ns cannot hold is an error (one per line)."""
            l_ip: list[str] = []
            l_key: list[str | None] = []
            l_start: list[int] = []
            l_end: list[int] = []
            l_no: list[int] = []
            failed = 0
            for item in items:
                if isinstance(item, LeaseError):
                    errs.append(item)
                    continue
                line = int(item.source.rsplit(":", 1)[1])
                start = _ns(item.start)
                end = OPEN_NS if item.end is None else _ns(item.end)
                if not (_NS_LOW < start < _NS_HIGH and _NS_LOW < end <= _NS_HIGH):
                    if line != failed:
                        errs.append(LeaseError(name, line, "time out of the int64 ns range: "
                                               f"{item.start.isoformat()}, "
                                               f"{item.end and item.end.isoformat()}"))
                        failed = line
                    continue
                l_ip.append(item.ip)
                l_key.append(item.subscriber)
                l_start.append(start)
                l_end.append(end)
                l_no.append(line)
            return l_ip, l_key, l_start, l_end, l_no

        def slow(no: int) -> None:
            """The lines in ``buf`` (``no``: the line before them) by `_radacct_rows`."""
            l_ip, l_key, l_start, l_end, l_no = add(
                _radacct_rows(name, head, take(), rest(), no, bad, tail), errors)
            ips.extend(l_ip)
            keys.extend(l_key)
            starts.append(np.array(l_start, dtype=np.int64))
            ends.append(np.array(l_end, dtype=np.int64))
            nos.append(np.array(l_no, dtype=np.int64))
            if all_v4[0]:
                four.append(_packed4(l_ip, all_v4))

        def by_columns(data: bytes, first: int) -> int:
            """Take the lines of ``data`` a column at a time: their number, or 0 (and
            nothing taken) when the block is not plain."""
            try:
                block = data.decode("utf-8")
            except UnicodeDecodeError:
                return 0
            if '"' in block:
                return 0
            mark = f"{delimiter}\n{delimiter}"
            if "\r" in block:  # CRLF line ends (the block's last "\n" is cut off)
                if block[-1] == "\r":
                    block = block[:-1]
                block = block.replace("\r\n", mark)
                if "\r" in block:  # a CR that does not end a line
                    return 0
            else:
                block = block.replace("\n", mark)
            count = block.count("\n") + 1
            flat = block.split(delimiter)
            # each line's fields, then "\n": every line has n fields when all the "\n"s
            # are in their places
            if len(flat) != count * (n + 1) - 1 or flat[n::n + 1].count("\n") != count - 1:
                return 0
            ok, start = _iso_ns(flat[i_start::n + 1])
            if i_stop >= 0:
                stops = flat[i_stop::n + 1]
                ok_stop, end = _iso_ns(stops)
                null = _null_mask(stops)
                ok &= ok_stop | null
                end[null] = OPEN_NS
            else:
                end = np.full(count, OPEN_NS, dtype=np.int64)
            early = ok & (end < start)  # an error, whatever the addresses are
            slow_row = ~ok
            values: list[list[str | None]] = []  # per address column in use
            present: list[NDArray[np.bool_]] = []
            packed: list[NDArray[np.uint32] | None] = []  # None: not all IPv4
            for c in addr_cols:
                col = flat[c::n + 1]
                if col.count("") == count:
                    continue
                try:
                    got = list(map(pton, itertools.repeat(af_inet), col))
                except (OSError, ValueError):
                    got = []
                if got:
                    values.append(col)  # type: ignore[arg-type]
                    present.append(np.ones(count, dtype=bool))
                    packed.append(np.frombuffer(b"".join(got), dtype=">u4").astype(np.uint32))
                    continue
                norm: list[str | None] = []
                here = np.zeros(count, dtype=bool)
                v4 = True
                for i, value in enumerate(col):
                    if value in nulls:
                        norm.append(None)
                        continue
                    try:
                        pton(af_inet, value)
                    except (OSError, ValueError):
                        v4 = False
                        try:
                            value = ip_of(value) or (norm_ip(value) if "/" not in value
                                                     else _norm_prefix(value))
                        except BadValue:
                            slow_row[i] |= ~early[i]
                            norm.append(None)
                            continue
                    norm.append(value)
                    here[i] = True
                values.append(norm)
                present.append(here)
                packed.append(_packed4(norm, [True]) if v4 else None)
            good = ~slow_row & ~early
            has = (np.logical_or.reduce(present) & good if values
                   else np.zeros(count, dtype=bool))
            no_addr = good & ~has
            users: list[str] = flat[i_user::n + 1] if i_user >= 0 else [""] * count
            key: list[str | None]
            if not _null_mask(users).any():
                key = users  # type: ignore[assignment]
            else:
                calling = flat[i_calling::n + 1] if i_calling >= 0 else [""] * count
                key = [u if u not in nulls else (None if c in nulls else c)
                       for u, c in zip(users, calling, strict=True)]
            # the leases of the good rows: row by row, in the order of the columns
            b_ip: list[str]
            if len(values) == 1 and has.all():
                b_ip = values[0]  # type: ignore[assignment]
                rows = np.arange(count, dtype=np.int64)
                b_key = key
                b_four = packed[0]
            else:
                mask = np.stack(present, axis=1) & has[:, None] if values else \
                    np.zeros((count, 0), dtype=bool)
                table = np.empty((count, len(values)), dtype=object)
                for j, v in enumerate(values):
                    table[:, j] = v
                rows = np.nonzero(mask)[0].astype(np.int64)
                b_ip = table[mask].tolist()
                key_arr = np.empty(count, dtype=object)
                key_arr[:] = key
                b_key = key_arr[rows].tolist()
                b_four = None
                if all(x is not None for x in packed) and values:
                    b_four = np.stack(cast(list[NDArray[np.uint32]], packed),
                                      axis=1)[mask]
            b_start, b_end, b_no = start[rows], end[rows], rows + first
            errs: list[LeaseError] = []
            for i in np.flatnonzero(early | no_addr | slow_row).tolist():
                if early[i]:
                    errs.append(LeaseError(name, first + i, "acctstoptime before acctstarttime"))
                elif no_addr[i]:
                    errs.append(LeaseError(name, first + i, "session without a framed address"))
                else:
                    line = delimiter.join(flat[i * (n + 1):i * (n + 1) + n])
                    s_ip, s_key, s_start, s_end, s_no = add(
                        _radacct_rows(name, head, (line,), iter(()), first + i - 1, {}, []),
                        errs)
                    b_ip = [*b_ip, *s_ip]
                    b_key = [*b_key, *s_key]
                    b_start = np.concatenate([b_start, np.array(s_start, dtype=np.int64)])
                    b_end = np.concatenate([b_end, np.array(s_end, dtype=np.int64)])
                    b_no = np.concatenate([b_no, np.array(s_no, dtype=np.int64)])
                    if b_four is not None:
                        b_four = np.concatenate([b_four, _packed4(s_ip, [True])]) \
                            if _v4s(s_ip) else None
            if len(b_no) > len(rows):  # rows read one by one: back in the file's order
                order = np.argsort(b_no, kind="stable")
                b_ip = [b_ip[i] for i in order.tolist()]
                b_key = [b_key[i] for i in order.tolist()]
                b_start, b_end, b_no = b_start[order], b_end[order], b_no[order]
                if b_four is not None:
                    b_four = b_four[order]
                errs.sort(key=operator.attrgetter("line_no"))
            errors.extend(errs)
            ips.extend(b_ip)
            keys.extend(b_key)
            starts.append(b_start)
            ends.append(b_end)
            nos.append(b_no)
            if b_four is None:
                all_v4[0] = False
            elif all_v4[0]:
                four.append(b_four)
            return count

        first_rest = fed + 1 - len(buf)  # the lines after the header in the first block
        if buf:
            lines = list(buf)
            if "" not in lines and by_columns("\n".join(lines).encode("utf-8"), first_rest):
                buf.clear()
            else:
                slow(first_rest - 1)
        for data, last in raw:
            first = fed + 1
            if last:
                tail.append(first)
            taken = by_columns(data, first)
            if taken:
                fed += taken
                continue
            buf.extend(_decode_block(data, name, first, bad, False, crlf))
            fed = first - 1 + len(buf)
            slow(first - 1)
    total = len(ips)
    ip4 = None
    if all_v4[0]:
        ip4 = np.concatenate(four) if four else np.zeros(0, dtype=np.uint32)
    none = np.full(total, -1, dtype=np.int64)
    return LeaseColumns(name, ips, _cat(starts), _cat(ends), keys, [None] * total, _cat(nos),
                        none, none.copy(), ip4, errors)


def _v4s(texts: list[str]) -> bool:
    """Whether every text is an IPv4 address in normal form."""
    try:
        list(map(_inet_pton, itertools.repeat(_AF_INET), texts))
    except (OSError, ValueError):
        return False
    return True


def _packed4(texts: Sequence[str | None], ok: list[bool]) -> NDArray[np.uint32]:
    """IPv4 texts in normal form as uint32; when one is not, ``ok[0] = False`` (and
    zeros)."""
    try:
        got = [_inet_pton(_AF_INET, t) if t is not None else _NOT_V4 for t in texts]
    except (OSError, ValueError):
        ok[0] = False
        return np.zeros(len(texts), dtype=np.uint32)
    return np.frombuffer(b"".join(got), dtype=">u4").astype(np.uint32)


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
