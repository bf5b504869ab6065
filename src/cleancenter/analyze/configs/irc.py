"""A generic IRC-bot configuration from strings: servers and ports, channel and key, nick
pattern, command prefix.

IRC bots (Tsunami/Kaiten, the many Perl and C "ircbots") keep their configuration as
plain strings next to the protocol formats (``NICK %s``, ``JOIN %s %s``...). What is read,
each only within `IRC_WINDOW` bytes of an IRC protocol string (``NICK ``, ``JOIN ``,
``PRIVMSG ``, ``NOTICE ``; ``NICK`` and ``JOIN`` or ``PRIVMSG`` are required), so that a
library's strings elsewhere in a static binary do not count:

- servers: ``irc://host[:port]``, a string that is exactly ``host:port``, or exactly a
  host (a domain under a real public suffix, or an IPv4 address); its port is the one
  after the colon or a string that is exactly a port number at most two strings away
  (within 64 bytes); a bare host with no port and no ``irc`` name counts only when a
  channel was found too (busybox has ``192.168.0.20`` near ``USER %s``);
- channel and key: ``JOIN #chan [key]`` with literal values, a string that is exactly
  ``#chan`` or ``#chan key``; when the bot joins with a format (``JOIN %s %s``,
  ``JOIN %s :%s``), the key is the string right after the channel (within 64 bytes) if it
  is a single short word (not a format, host, port or channel);
- nick pattern: ``NICK <literal pattern>``, else the nick-like format string nearest to
  ``NICK %s`` (``bot-%d``, ``[%s]%d``, ``[%s|%s]%u``): nick characters and printf
  conversions only, at least one literal character, at most 30 characters;
- command prefix: strings starting with a prefix (``!``, ``.``, ``@``, ``$``, ``~``, ``?``
  and Gafgyt's ``!*``) and a known command word (``!download``, ``.udp``, ``!* TCP``); the
  prefix with the most distinct known words wins, with two at least.

A configuration needs a server or a channel. MACO has no IRC section: servers go to
``tcp`` (usage c2), the channel key to ``password``, everything to ``other["irc"]``.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections import defaultdict
from typing import Any

from maco.model import ConnUsageEnum, ExtractorModel  # type: ignore[import-untyped,unused-ignore]

from cleancenter.analyze.configs import Context
from cleancenter.analyze.configs._hosts import host_kind, port_value

COMMUNITY_PATTERNS = ("*ircbot*", "*irc_bot*", "*tsunami*", "*kaiten*", "*gafgyt*",
                      "*bashlite*")
DEFAULT_FAMILY = "IRCBot"
IRC_WINDOW = 4096
ADJACENT = 64  # bytes between a server and its port string, a channel and its key
IRC_PORTS = frozenset([*range(6660, 6670), 6697])

_PROTO = re.compile(r"(?<![A-Za-z])(NICK|JOIN|PRIVMSG|NOTICE) ")
_CHANNEL = r"[#&][A-Za-z0-9_\-.\[\]{}|^`~]{1,49}"
_CHANNEL_STRING = re.compile(rf"({_CHANNEL})(?: ([\x21-\x7e]{{1,32}}))?\Z")
_JOIN_LITERAL = re.compile(rf"JOIN ({_CHANNEL})(?: :?([^\s%]{{1,32}}))?\s*\Z")
_JOIN_FORMAT = re.compile(r"JOIN (?:#?%s) :?%s")
_KEY = re.compile(r"[\x21-\x7e]{1,32}\Z")
_HOST_PORT = re.compile(r"([A-Za-z0-9.\-]{4,253}):(\d{1,5})\Z")
_IRC_URL = re.compile(r"ircs?://([A-Za-z0-9.\-]{4,253})(?::(\d{1,5}))?")
_NICK_LITERAL = re.compile(r"NICK (\S{1,30})\s*\Z")
_NICK_PATTERN = re.compile(r"(?:[A-Za-z0-9\[\]\\`_^{|}\-]|%[0-9]*l?[sduxXc])+\Z")
_CONVERSION = re.compile(r"%[0-9]*l?[sduxXc]")
_COMMAND = re.compile(r"(!\* ?|[!.@$~?])([A-Za-z]{2,16})\b")

# Command words of IRC and Gafgyt-like bots (lowercase).
COMMAND_WORDS = frozenset([
    "download", "dl", "get", "update", "exec", "sh", "shell", "cmd", "run", "kill",
    "killall", "die", "quit", "stop", "join", "part", "nick", "raw", "version", "info",
    "status", "help", "udp", "tcp", "syn", "ack", "http", "https", "std", "hold", "junk",
    "flood", "ddos", "dos", "pan", "unknown", "rape", "scan", "scanner", "telnet", "ssh",
    "spoof", "getspoofs", "spoofs", "kaiten", "random", "nickchange", "disable",
    "enable", "move", "sendmsg", "stopall", "dns", "vse", "ovh", "greeth", "gre", "icmp",
    "ping", "blacknurse", "xmas", "stomp", "cnc", "botkill", "lolnogtfo", "gtfo",
])


def _strings(ctx: Context) -> tuple[list[int], list[str]]:
    table = ctx.strings
    pairs = sorted(zip(table.offsets, table.texts, strict=True))
    return [p[0] for p in pairs], [p[1].strip("\r\n\t ") for p in pairs]


def _family(ctx: Context) -> str:
    names = " ".join(ctx.community).lower()
    if "tsunami" in names or "kaiten" in names:
        return "Tsunami"
    if "gafgyt" in names or "bashlite" in names:
        return "Gafgyt"
    return DEFAULT_FAMILY


def extract(ctx: Context) -> ExtractorModel | None:
    offsets, texts = _strings(ctx)
    proto = []
    words: set[str] = set()
    for i, t in enumerate(texts):
        if m := _PROTO.search(t):
            proto.append(i)
            words.add(m.group(1))
    if "NICK" not in words or not words & {"JOIN", "PRIVMSG"}:
        return None
    proto_offsets = [offsets[i] for i in proto]

    def near(i: int) -> bool:
        k = bisect_left(proto_offsets, offsets[i] - IRC_WINDOW)
        return k < len(proto_offsets) and proto_offsets[k] <= offsets[i] + IRC_WINDOW

    lo = bisect_left(offsets, proto_offsets[0] - IRC_WINDOW)
    hi = bisect_right(offsets, proto_offsets[-1] + IRC_WINDOW)
    window = [i for i in range(lo, hi) if near(i)]

    def adjacent_port(i: int) -> int | None:
        for j in (i + 1, i + 2, i - 1):
            if 0 <= j < len(texts) and abs(offsets[j] - offsets[i]) <= ADJACENT:
                port = port_value(texts[j])
                if port is not None:
                    return port
        return None

    servers: list[tuple[str, int | None]] = []
    weak: set[str] = set()  # bare hosts with no port and no irc name: need a channel
    channels: list[tuple[str, str | None]] = []
    nick: str | None = None
    nick_candidates: list[tuple[int, str]] = []
    joins_with_format = False
    prefixes: dict[str, set[str]] = defaultdict(set)
    used: set[int] = set()  # strings taken as a server, port or channel

    for i in window:
        text = texts[i]
        if _JOIN_FORMAT.search(text):
            joins_with_format = True
        if (m := _IRC_URL.search(text)) and host_kind(m.group(1)):
            servers.append((m.group(1), port_value(m.group(2) or "")))
            continue
        if m := _HOST_PORT.match(text):
            if host_kind(m.group(1)):
                servers.append((m.group(1), port_value(m.group(2))))
                used.add(i)
            continue
        if host_kind(text):
            port = adjacent_port(i)
            servers.append((text, port))
            if port is None and not text.lower().startswith("irc"):
                weak.add(text)
            used.add(i)
            continue
        if m := _JOIN_LITERAL.match(text):
            channels.append((m.group(1), m.group(2)))
            continue
        if m := _CHANNEL_STRING.match(text):
            channels.append((m.group(1), m.group(2)))
            used.add(i)
            continue
        if m := _NICK_LITERAL.match(text):
            if not _CONVERSION.fullmatch(m.group(1)) and _NICK_PATTERN.match(m.group(1)):
                nick = m.group(1)
            continue
        if (len(text) <= 30 and _CONVERSION.search(text) and _NICK_PATTERN.match(text)
                and _CONVERSION.sub("", text).strip("0123456789")):
            nick_candidates.append((offsets[i], text))
            continue
        if m := _COMMAND.match(text):
            word = m.group(2).lower()
            if word in COMMAND_WORDS:
                prefixes[m.group(1).rstrip()].add(word)

    # channel keys given apart from the channel (JOIN %s %s)
    if joins_with_format:
        keyed: list[tuple[str, str | None]] = []
        for name, key in channels:
            if key is None:
                idx = next((i for i in window if texts[i] == name), None)
                j = idx + 1 if idx is not None else None
                if (j is not None and j < len(texts) and j not in used
                        and offsets[j] - offsets[j - 1] <= ADJACENT
                        and _KEY.match(texts[j]) and "%" not in texts[j]
                        and port_value(texts[j]) is None and host_kind(texts[j]) is None
                        and not _PROTO.search(texts[j])):
                    key = texts[j]
            keyed.append((name, key))
        channels = keyed

    if not channels:
        servers = [(h, p) for h, p in servers if h not in weak]
    if not servers and not channels:
        return None
    if nick is None and nick_candidates:
        nick_at = [offsets[i] for i in proto if texts[i].startswith("NICK ")] or proto_offsets
        nick = min(nick_candidates,
                   key=lambda c: min(abs(c[0] - a) for a in nick_at))[1]
    prefix: str | None = None
    commands: list[str] = []
    if prefixes:
        best = max(prefixes, key=lambda p: (len(prefixes[p]), p))
        if len(prefixes[best]) >= 2:
            prefix, commands = best, sorted(prefixes[best])

    servers = list(dict.fromkeys(servers))
    channels = list(dict.fromkeys(channels))
    tcp = []
    for host, port in servers:
        conn = ExtractorModel.Connection(server_port=port, usage=ConnUsageEnum.c2)
        if host_kind(host) == "ip":
            conn.server_ip = host
        else:
            conn.server_domain = host
        tcp.append(conn)
    irc: dict[str, Any] = {
        "servers": [{"host": h, "port": p} for h, p in servers],
        "channels": [{"name": c, "key": k} for c, k in channels],
        "nick_pattern": nick,
        "command_prefix": prefix,
        "commands": commands,
    }
    return ExtractorModel(
        family=_family(ctx),
        category=["bot"],
        tcp=tcp,
        password=[k for _, k in channels if k],
        other={"irc": irc},
    )
