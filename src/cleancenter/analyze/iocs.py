"""Indicators of compromise in a sample's strings, each with the file offset where its
own text starts (``IOC.context`` keeps the string around it).

The rules are selective on purpose: an analyst reads every IOC, and a benign program
must not drown the real ones. Measured on 682 ELF programs of /usr/bin and 763 benign PE
files (Wine, pywin32, pip/setuptools launchers), see the tests for the bounds.

- ``url``: ``http``, ``https``, ``ftp``, ``tftp``, ``irc``, ``ircs`` URLs whose host is an
  IP address or a registrable domain; trailing punctuation and an unbalanced ``)`` are
  cut. Its host is reported too (``domain``/``ipv4``/``ipv6``, with the URL's port).
- ``domain``: a name ending in a real public suffix of the Public Suffix List shipped
  offline by ``publicsuffixlist`` (read from its package folder, never fetched), with a
  registrable label: ``cnc.duckdns.org`` yes; ``kernel32.dll``, ``version.txt``,
  ``duckdns.org`` alone no. In free text (not a URL host or an e-mail) also:
  lowercase, or all-uppercase with three labels (``System.Net``, ``README.TXT`` are not
  names); no leading dot (ELF sections: ``.data.rel.ro``); not right after ``/``,
  ``\\``, ``@``, ``%``, ``$``, ``_`` or ``->``, not followed by ``(`` or ``=`` (code);
  suffixes that are file extensions (`FILE_LIKE_SUFFIXES`: ``so``, ``sh``, ``py``,
  ``in``, ``zip``, ...) need three labels of 2+ characters, none numeric, no ``lib``
  head (``libc.so``, ``libfoo-0.21.so`` no; ``cdn.evil.sh`` yes); two-label names need
  a country code or a suffix of `SHORT_NAME_SUFFIXES` (legacy and much-abused generic
  ones: ``com``, ``net``, ``xyz``, ``top``, ...), other suffixes are words of code
  (``io.open``, ``r.date``, ``collections.abc``) and need three labels; Java-style
  names (``org.eclipse.cdt.make``) are not domains; the registrable label needs a letter
  and 3+ characters (2 under com/net/org: ``qq.com``), as junk bytes spell ``q.gn``.
- ``ipv4``: four octets without leading zeros, not inside a longer dotted number or a
  word; dropped: after ``version``/``ver``/``build``/``release``/``rev``/``section``/
  ``rfc`` (``version="6.0.0.0"``), a whole string right after a ``...Version`` string
  (a version resource), all-single-digit quads (``1.2.3.4``, ``9.1.7.3``) except the
  public resolvers (`PUBLIC_RESOLVERS`: 8.8.8.8, 1.1.1.1, ...), ``0.x``, ``x.0.0.0``,
  loopback, multicast, reserved (240/4, netmasks) and object identifiers (``1.3.x``,
  ``2.5.x``). Private and documentation ranges are kept: a lab bot's configuration is
  still its configuration.
- ``ipv6``: valid for `ipaddress`, with ``::`` or eight groups, a digit, three groups,
  no word character around it (``std::``, ``A::B`` never match) and global unicast
  (2000::/3) or unique-local (fc00::/7); value in canonical form; ``[addr]:port``.
- ports: ``host:port`` (1-65535) sets ``port`` on the host's IOC.
- ``email``: ``local@domain`` with a registrable domain; not a ``%`` template, not an
  SSH algorithm name (``aes128-gcm@openssh.com``). Its domain is not reported apart.
- ``registry``: autostart keys only: ``CurrentVersion\\Run`` (``RunOnce``,
  ``RunOnceEx``, ``RunServices``, ``Policies\\Explorer\\Run``), ``Winlogon``, ``Image File
  Execution Options``, ``Windows NT\\CurrentVersion\\Windows`` (``AppInit_DLLs``),
  ``(Current)ControlSet\\Services``, ``Active Setup\\Installed Components``,
  ``ShellServiceObjectDelayLoad``, ``Browser Helper Objects``, ``Command Processor``;
  after ``HKLM``/``HKCU``/``HKEY_...``/``\\REGISTRY\\MACHINE`` or bare from
  ``Software``/``System``/``Microsoft``; the value ends at the key plus at most one
  subkey without spaces (``...\\Image File Execution Options\\sethc.exe``).
- ``path``: Windows drive paths (C: to Z:, 3+ characters after ``X:\\``; PDB paths
  included: they help attribution), ``%APPDATA%``-style paths with a component,
  ``\\\\.\\`` device and pipe paths (not ``NUL``, ``CON``...); Unix paths only where bots
  live or persist: ``/tmp``, ``/var/tmp``, ``/dev/shm``, ``/var/run/x``, ``/etc`` boot,
  cron, systemd, profile and credential files (``rc.local``, ``init.d/``, ``cron*``,
  ``passwd``, ``shadow``, ``ld.so.preload``, ``hosts``, ``sudoers``),
  ``/var/spool/cron``, systemd unit folders, ``/root/...``, dotfiles and ``.ssh`` of
  homes, ``/proc/<pid>/{exe,cmdline,maps,status}``, ``/proc/net/{tcp,udp,route,arp,dev}``,
  ``/dev/watchdog``, ``/bin/busybox``. Not ``/usr/lib``, ``/usr/share``, ``/dev/null``,
  ``/proc/self``: every ELF has those.
- ``irc-command``: ``NICK x``, ``USER a b c :d``, ``JOIN <chan>``, ``PRIVMSG x ...`` at a
  word start (the value is the command line). ``irc-channel``: the channel of ``JOIN
  #chan key`` (key in ``context``) and, within `IRC_WINDOW` bytes of an IRC command, a
  string that is just ``#chan [key]``. ``irc-server``: ``host:port`` whose host starts
  with ``irc`` or whose port is 6660-6669/6697, any ``host:port`` (or ``irc*`` host)
  within `IRC_WINDOW` bytes of an IRC command, and the host of an ``irc://`` URL.
- ``command``: ``wget``/``curl``/``tftp``/``ftpget``, optionally after ``busybox``, with a
  download target (URL, IPv4 or ``host.tld/path``) in the same string, up to the next
  ``;``, ``|``, ``&`` or backquote. Usage texts (``wget [URL]``) have no target.

Noise, dropped for URLs, domains and e-mails (`NOISE_DOMAINS`, `NOISE_HOSTS`,
`CA_DOMAINS`): XML/manifest namespaces and schemas (``w3.org``, ``xmlsoap.org``,
``openxmlformats.org``, ``oasis-open.org``, ``purl.org``, ``xml.org``, ``xmlsoft.org``,
``exslt.org``, ``relaxng.org``, ``iptc.org``, ``schemas.microsoft.com``,
``ns.microsoft.com``, ``ns.adobe.com``, any ``.xsd``/``.dtd`` URL), the certificate
services of CAs (CRL, OCSP, AIA, time-stamp hosts and CPS/repository/``.crl``/``.crt``
paths of DigiCert, VeriSign, Symantec, Sectigo/Comodo, GlobalSign, Thawte, GeoTrust,
Entrust, GoDaddy, Let's Encrypt, IdenTrust, Microsoft PKI) and GNU help texts
(``gnu.org``, ``fsf.org``, ``translationproject.org``). Nothing else: github.com,
pastebin.com or a CA's own web site stay, they do host payloads.

Dedupe: one IOC per (type, value, port), case-insensitive, keeping the smallest offset
(the port is part of the key: two C2 ports of one host are two indicators); then at
most ``max_per_type`` per type, the first ones in the file.

Speed: the strings are joined with newlines (no string holds one) and each detector
runs a regex that starts with a literal (``://``, ``@``, ``.tld``, ``NICK ``...), which
``re`` finds with a fast literal search; the rest is checked per hit, and hits are rare.
"""

from __future__ import annotations

import ipaddress
import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from publicsuffixlist import PublicSuffixList

from cleancenter.analyze.report import IOC, IocType
from cleancenter.analyze.strings import FoundString, StringTable

DEFAULT_MAX_PER_TYPE = 200
CONTEXT_MAX = 200
VALUE_MAX = 300
IRC_WINDOW = 4096  # bytes around an IRC command where host:port and #chan count as IRC
IRC_PORTS = frozenset([*range(6660, 6670), 6697])

# Public suffixes that are also file extensions or common code/section words.
FILE_LIKE_SUFFIXES = frozenset([
    "so", "sh", "py", "pl", "pm", "cc", "la", "in", "am", "ac", "mk", "md", "rs", "zip",
    "mov", "mo", "ml", "ps", "do", "app", "run", "pid", "map", "data", "build",
    "got", "man", "new", "cx", "sx", "as",
])
# Two-label names in free text (``evil.xyz``) count only under these suffixes: country
# codes, the legacy generic ones and the cheap generic ones abuse reports keep naming.
# Any other suffix is usually a word of code (``io.open``, ``r.date``, ``os.link``,
# ``collections.abc``, ``builtins.id``) and needs three labels (``cdn.evil.cloud``).
SHORT_NAME_SUFFIXES = frozenset([
    "com", "net", "org", "info", "biz", "edu", "gov", "mil", "int", "mobi", "asia", "tel",
    "pro", "aero", "coop", "museum", "jobs", "travel", "cat",
    "xyz", "top", "online", "site", "icu", "club", "shop", "buzz", "cyou", "sbs", "cfd",
    "bond", "rest", "vip", "fun", "space", "website", "tech", "click", "monster", "quest",
    "win", "bid", "loan", "men", "party", "racing", "accountant", "cricket", "science",
    "faith", "gdn", "kim", "webcam",
])
# Country codes that are also common words of code (``builtins.id``, ``self.it``).
CODE_WORD_CCTLDS = frozenset(["id", "is", "it", "at", "by", "no", "be"])

# Registrable domains that are noise wherever they appear.
NOISE_DOMAINS = frozenset([
    "w3.org", "xmlsoap.org", "openxmlformats.org", "purl.org", "oasis-open.org",
    "xml.org", "xmlsoft.org", "exslt.org", "relaxng.org", "iptc.org",
    "gnu.org", "fsf.org", "translationproject.org",
])
NOISE_HOSTS = frozenset(["schemas.microsoft.com", "ns.microsoft.com", "ns.adobe.com"])
# ``name@domain`` that are protocol identifiers, not addresses (``aes128-gcm@openssh.com``).
NOISE_EMAIL_DOMAINS = frozenset(["openssh.com", "libssh.org"])
# Certificate authorities: only their certificate-service hosts and paths are noise.
CA_DOMAINS = frozenset([
    "digicert.com", "verisign.com", "symantec.com", "symcb.com", "symcd.com",
    "symauth.com", "sectigo.com", "comodoca.com", "comodo.com", "usertrust.com",
    "globalsign.com", "globalsign.net", "thawte.com", "geotrust.com", "entrust.net",
    "godaddy.com", "starfieldtech.com", "lencr.org", "letsencrypt.org", "identrust.com",
    "microsoft.com", "msocsp.com",
])
_CA_SERVICE_LABEL = re.compile(
    r"(?:ts-)?(?:crl\d*|ocsp\d*|cacerts|aia|cdp|pki|certificates|timestamp|tsa|ts|sv|s|"
    r"secure|logo|x\d+|r\d+|e\d+|crt)(?:-.*)?\Z"
)
# Certificate paths; DER bytes often follow the text (``/CPS0``, ``.crl0``).
_CA_SERVICE_PATH = re.compile(r"(?i)/(?:cps|rpa|repository|pki)|\.(?:crl|crt|cer|p7c)")


@lru_cache(maxsize=1)
def public_suffixes() -> PublicSuffixList:
    """The Public Suffix List the package ships (read from disk once; never fetched).
    Unknown suffixes are not accepted: ``x.exe`` must not become a domain."""
    return PublicSuffixList(accept_unknown=False)


@lru_cache(maxsize=65536)
def registrable_domain(name: str) -> str | None:
    """``name``'s registrable domain (public suffix plus one label), lowercase, or None."""
    return public_suffixes().privatesuffix(name.lower())


def is_noise_host(host: str, path: str = "") -> bool:
    """Schema, certificate-infrastructure and help-text hosts (see the module doc)."""
    host = host.lower().rstrip(".")
    if host in NOISE_HOSTS:
        return True
    reg = registrable_domain(host)
    if reg is None:
        return False
    if reg in NOISE_DOMAINS:
        return True
    if reg in CA_DOMAINS:
        first = host.split(".", 1)[0]
        return (host != reg and _CA_SERVICE_LABEL.match(first) is not None) or (
            _CA_SERVICE_PATH.search(path) is not None
        )
    return False


_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)\Z")
_DOMAIN_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.")


def _text_domain_ok(name: str) -> bool:
    """A domain found in free text (not a URL host): see the module doc."""
    if len(name) > 253:
        return False
    if name != name.lower() and (name != name.upper() or name.count(".") < 2):
        return False  # System.Net, Microsoft.Win32, README.TXT, Z.NET
    labels = name.lower().split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    tld = labels[-1]
    if tld in FILE_LIKE_SUFFIXES:
        if (
            len(labels) < 3
            or labels[0].startswith("lib")
            or any(len(label) < 2 or label.isdigit() for label in labels[:-1])
        ):
            return False
    elif len(labels) < 3 and not (
        tld in SHORT_NAME_SUFFIXES
        or (len(tld) == 2 and tld not in CODE_WORD_CCTLDS)
        or tld.startswith("xn--")
    ):
        return False
    if len(labels) >= 3 and labels[0] in _REVERSE_DNS_HEADS:
        return False  # a Java/Android/D-Bus name: org.eclipse.cdt.make.core
    reg = registrable_domain(name)
    if reg is None:
        return False
    head, _, suffix = reg.partition(".")
    # Random bytes of code or tables spell ``1.cg``, ``q.gn``, ``f.nl``: a registrable
    # label needs a letter and three characters (two under com/net/org: ``qq.com``).
    return any(c.isalpha() for c in head) and (
        len(head) >= 3 or (len(head) == 2 and suffix in _SHORT_HEAD_OK)
    )


_REVERSE_DNS_HEADS = frozenset(["com", "org", "net", "edu", "gov", "mil"])
_SHORT_HEAD_OK = frozenset(["com", "net", "org"])


def _host_domain_ok(name: str) -> bool:
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(x) for x in labels):
        return False
    return registrable_domain(name) is not None


# X.509 / SNMP object identifiers (2.5.4.x, 2.5.29.x, 1.3.6.x, 1.3.14.x, 1.3.132.x).
_OID_PREFIXES = ("2.5.", "1.3.")
# The well-known public DNS resolvers: malware checks connectivity with them, and their
# single-digit octets would otherwise read as versions.
PUBLIC_RESOLVERS = frozenset([
    "1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4", "9.9.9.9", "4.2.2.1", "4.2.2.2", "4.2.2.3",
    "4.2.2.4", "4.2.2.5", "4.2.2.6",
])


def ipv4_ok(value: str) -> bool:
    """A dotted quad worth reporting (see the module doc)."""
    try:
        ip = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    octets = value.split(".")
    if all(len(o) == 1 for o in octets) and value not in PUBLIC_RESOLVERS:
        return False  # 1.2.3.4, 2.9.0.0, 9.1.7.3: versions, not hosts
    return not (
        octets[0] == "0"
        or value.endswith(".0.0.0")
        or ip.is_loopback
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or value.startswith(_OID_PREFIXES)
    )


_IPV6_GLOBAL = ipaddress.IPv6Network("2000::/3")
_IPV6_ULA = ipaddress.IPv6Network("fc00::/7")


def ipv6_value(text: str) -> str | None:
    """The canonical form of ``text`` when it is an IPv6 address worth reporting."""
    if text.count(":") < 2 or ("::" not in text and text.count(":") != 7):
        return None
    if not any(c.isdigit() for c in text):
        return None
    groups = [g for g in text.split(":") if g]
    if len(groups) + (1 if "." in text else 0) < 3:
        return None
    try:
        ip = ipaddress.IPv6Address(text)
    except ValueError:
        return None
    # Only global unicast (2000::/3) and unique-local (fc00::/7) addresses: the rest is
    # special-purpose, or hex that happens to parse (``615:817::19``).
    if not (ip in _IPV6_GLOBAL or ip in _IPV6_ULA):
        return None
    return str(ip)


def _port(text: str) -> int | None:
    if not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


# --- patterns (each scan of the joined text starts with a literal) ---------------------

_URL_ANCHOR = re.compile(r"://")
_SCHEME_BEFORE = re.compile(r"(?i)(?<![A-Za-z0-9+.-])(https?|tftp|ftp|ircs?)\Z")
_URL_BODY = re.compile(r"[^\s\"'<>`{}|\\^\x00-\x20\x7f-\xff]+")
_SCHEMA_PATH = re.compile(r"(?i)\.(?:xsd|dtd)(?:[#?]|\Z)")
_TRAILING = ".,;:!?'\"]}>*"

_EMAIL_ANCHOR = re.compile(r"@")
_EMAIL_LOCAL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}\Z")
_EMAIL_LOCAL_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-"
)
_EMAIL_DOMAIN = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")

_TLD_ANCHOR = re.compile(r"\.(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})(?![\w-])(?!\.[A-Za-z0-9])")
_ASSIGNED = re.compile(r" ?=(?!=)")  # size.cy=%ld, tmp0.xyz = pow(...): code
_PORT_AFTER = re.compile(r":(\d{1,5})(?!\d)(?!\.\d)")

_IPV4_ANCHOR = re.compile(r"\.(?:\d{1,3})\.(?:\d{1,3})\.(?:\d{1,3})(?!\d)")
_VERSION_BEFORE = re.compile(
    r"(?i)(?:version|ver\.?|build|release|rev\.?|section|sect\.|chapter|rfc)\s*[:=]?\s*"
    r"[\"']?\s*\Z"
)

_VERSION_KEY = re.compile(r"(?i)version\W*\Z")

_IPV6_ANCHOR = re.compile(r":(?::|[0-9A-Fa-f]{1,4}:)")
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")

_COMMAND_WORDS = ("wget", "curl", "tftp", "ftpget")
_COMMAND_ANCHORS = tuple(re.compile(re.escape(w + " ")) for w in _COMMAND_WORDS)
_COMMAND_SEGMENT = re.compile(r"[^;|&\n`]*")
_COMMAND_TARGET = re.compile(
    r"://|(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w])|(?<![\w.-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+/"
)

_IRC_ANCHORS = tuple(re.compile(w + " ") for w in ("NICK", "USER", "JOIN", "PRIVMSG"))
_IRC_FORMS = {
    "NICK": re.compile(r"NICK :?[^\s:]{1,64}"),
    "USER": re.compile(r"USER \S+ \S+ \S+ :"),
    "JOIN": re.compile(r"JOIN :?(?P<chan>[#&][^\s,\x07]{1,49}|%s)(?: (?P<key>\S+))?"),
    "PRIVMSG": re.compile(r"PRIVMSG \S+ "),
}
_CHANNEL_LINE = re.compile(r"#[A-Za-z0-9_\-\[\]\\`^{}|.]{1,49}(?: \S{1,64})?")
_NOT_CHANNELS = re.compile(
    r"#(?:define|include|if|ifdef|ifndef|else|elif|endif|pragma|error|warning|line|undef|"
    r"import)\b|#[0-9A-Fa-f]{3}(?:[0-9A-Fa-f]{3})?\b|#\d+\Z"
)

_REG_ANCHOR = re.compile(
    r"\\(?i:currentversion|winlogon|image file execution options|(?:current)?controlset|"
    r"active setup|shellserviceobjectdelayload|explorer|command processor)"
)
_REG_KEY = re.compile(
    r"""(?<![\w\\])\\{0,2}
    (?:(?:HKEY_(?:LOCAL_MACHINE|CURRENT_USER|USERS|CLASSES_ROOT|CURRENT_CONFIG)
        |HK(?:LM|CU|CR|CC|U)):?\\{1,2})?
    (?:REGISTRY\\{1,2}(?:MACHINE|USER)\\{1,2})?
    (?:SOFTWARE|SYSTEM|Microsoft)\\{1,2}
    (?:[^\\\x00-\x1f"*?<>|]{1,100}?\\{1,2}){0,8}?
    (?:CurrentVersion\\{1,2}(?:Policies\\{1,2}Explorer\\{1,2})?
         Run(?:Once(?:Ex)?|Services(?:Once)?)?
      |Winlogon
      |Image\ File\ Execution\ Options
      |Windows\ NT\\{1,2}CurrentVersion\\{1,2}Windows
      |(?:Current)?ControlSet\d{0,3}\\{1,2}Services
      |Active\ Setup\\{1,2}Installed\ Components
      |ShellServiceObjectDelayLoad
      |Explorer\\{1,2}Browser\ Helper\ Objects
      |Command\ Processor)
    (?![\w])
    (?:\\{1,2}[^\\\s"';,]{1,100})?""",
    re.IGNORECASE | re.VERBOSE,
)

_DRIVE_ANCHOR = re.compile(r":\\")
_DRIVE_LETTERS = frozenset("CDEFGHIJKLMNOPQRSTUVWXYZcdefghijklmnopqrstuvwxyz")
_DRIVE_PATH = re.compile(r"[A-Za-z]:\\{1,2}(?:[^\\/:*?\"<>|;\n]+\\{1,2})*[^\\/:*?\"<>|;\n ]*")
_ENV_ANCHOR = re.compile(
    r"%(?i:appdata|localappdata|temp|tmp|userprofile|programdata|allusersprofile|public|"
    r"systemroot|windir|programfiles|commonprogramfiles|systemdrive|homepath|homedrive|"
    r"startup)"
)
_ENV_PATH = re.compile(
    r"%[A-Za-z0-9_()]{2,30}%(?:\\{1,2}[^\\/:*?\"<>|\n]+)*\\{1,2}[^\\/:*?\"<>|\n ]+"
)
_DOS_DEVICES = frozenset(["NUL", "CON", "PRN", "AUX", "CONIN$", "CONOUT$"])
_DEVICE_ANCHOR = re.compile(r"\\\\\.\\")
_DEVICE_PATH = re.compile(r"\\\\\.\\[^\\\s\"*<>|]+(?:\\[^\\\s\"*<>|]+)*")

_UNIX_ANCHOR = re.compile(
    r"/(?:tmp|var/|dev/|etc/|proc/|root/|bin/busybox|lib/systemd/|usr/lib/systemd/|home/|"
    r"\.ssh/|\.bash|\.profile)"
)
_UNIX_TOKEN = re.compile(r"/[^\s\"'<>|;&`?(){}\[\]$,\\:=]*")
_UNIX_INTEREST = re.compile(
    r"""/(?:tmp|var/tmp|dev/shm)(?:/|\Z)
    |/var/run/[^/]
    |/etc/(?:rc\.local|rc\d?\.d/|init\.d/|cron|crontab|systemd/system/.|profile|bashrc|
           passwd|shadow|ld\.so\.preload|hosts\Z|sudoers)
    |/var/spool/cron
    |/(?:usr/)?lib/systemd/system/.
    |/root/.
    |/home/[^/]+/\.
    |/\.(?:ssh/|bashrc|bash_profile|profile)
    |/proc/(?:\d+|%d|%s|\*)/(?:exe|cmdline|maps|status)
    |/proc/net/(?:tcp6?|udp6?|route|arp|dev)\Z
    |/dev/(?:misc/)?watchdog
    |/bin/busybox""",
    re.VERBOSE,
)

_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


@dataclass(slots=True)
class _Hit:
    type: IocType
    value: str
    pos: int  # in the joined text
    port: int | None = None


class _Scan:
    """The strings joined by newlines (no string holds one), so each detector is a few
    C-level scans of one text; positions map back to strings with a bisect."""

    def __init__(self, table: StringTable) -> None:
        self.table = table
        self.text = "\n".join(table.texts)
        # Where each string starts in the joined text, summed at C speed (no Python loop:
        # a large program has 100,000+ strings).
        self.starts = list(accumulate(map((1).__add__, map(len, table.texts)), initial=0))
        self.starts.pop()
        self.hits: list[_Hit] = []
        self.spans: list[tuple[int, int]] = []  # taken by URLs, e-mails, paths
        self.irc_anchors: list[int] = []  # positions of IRC commands
        self.irc_offsets: list[int] = []  # their file offsets, sorted

    # -- helpers -----------------------------------------------------------------------
    def index(self, pos: int) -> int:
        return bisect_right(self.starts, pos) - 1

    def line_end(self, pos: int) -> int:
        end = self.text.find("\n", pos)
        return len(self.text) if end < 0 else end

    def line_start(self, pos: int) -> int:
        return self.starts[self.index(pos)]

    def before(self, pos: int) -> str:
        return self.text[pos - 1] if pos > 0 else "\n"

    def add(self, type_: IocType, value: str, pos: int, port: int | None = None) -> None:
        self.hits.append(_Hit(type_, value[:VALUE_MAX], pos, port))

    def taken(self, pos: int, spans_starts: list[int], spans: list[tuple[int, int]]) -> bool:
        i = bisect_right(spans_starts, pos) - 1
        return i >= 0 and pos < spans[i][1]

    def near_irc(self, pos: int) -> bool:
        if not self.irc_offsets:
            return False
        offset = self.offset(pos)
        anchors = self.irc_offsets
        i = bisect_right(anchors, offset)
        return (i > 0 and offset - anchors[i - 1] <= IRC_WINDOW) or (
            i < len(anchors) and anchors[i] - offset <= IRC_WINDOW
        )

    def after_version_key(self, pos: int) -> bool:
        """Whether the string at ``pos`` follows a ``...Version`` string closely: a
        version resource (``FileVersion``, ``1.1.0.14``) stores key and value apart."""
        i = self.index(pos)
        if i == 0 or i == self.table.ascii_count:
            return False
        scale = 1 if i < self.table.ascii_count else 2
        prev_text = self.table.texts[i - 1]
        gap = self.table.offsets[i] - self.table.offsets[i - 1] - len(prev_text) * scale
        return gap <= 32 and _VERSION_KEY.search(prev_text) is not None

    def offset(self, pos: int) -> int:
        i = self.index(pos)
        scale = 1 if i < self.table.ascii_count else 2
        return self.table.offsets[i] + (pos - self.starts[i]) * scale

    # -- detectors ---------------------------------------------------------------------
    def urls(self) -> None:
        text = self.text
        for m in _URL_ANCHOR.finditer(text):
            p = m.start()
            scheme = _SCHEME_BEFORE.search(text, max(0, p - 5), p)
            body = _URL_BODY.match(text, p + 3)
            if scheme is None or body is None:
                continue
            start = scheme.start()
            url = text[start : body.end()]
            url = _strip_trailing(url)
            rest = url[len(scheme.group()) + 3 :]
            authority, _, path = _split_authority(rest)
            host_info = _parse_authority(authority)
            if host_info is None:
                continue
            host, port, host_rel = host_info
            kind = _host_kind(host)
            if kind is None or is_noise_host(host, path if kind == "domain" else ""):
                continue
            if _SCHEMA_PATH.search(path):
                continue
            self.spans.append((start, start + len(url)))
            self.add("url", url, start, port)
            host_pos = p + 3 + host_rel
            value = host.lower() if kind == "domain" else host
            if kind == "ipv6":
                value = ipv6_value(host) or host
            self.add(kind, value, host_pos, port)
            if scheme.group().lower().startswith("irc"):
                self.add("irc-server", value, host_pos, port)

    def emails(self) -> None:
        text = self.text
        for m in _EMAIL_ANCHOR.finditer(text):
            p = m.start()
            if self.before(p) not in _EMAIL_LOCAL_CHARS or text[p + 1 : p + 2] not in _WORD:
                continue
            local = _EMAIL_LOCAL.search(text, max(0, p - 64), p)
            domain = _EMAIL_DOMAIN.match(text, p + 1)
            if local is None or domain is None:
                continue
            lpart = local.group()
            if "%" in lpart or lpart[0] == "." or lpart[-1] == "." or ".." in lpart:
                continue
            host = domain.group()
            if text[domain.end() : domain.end() + 1] in ("(", "_"):
                continue
            if not _host_domain_ok(host):
                continue
            self.spans.append((local.start(), domain.end()))
            if is_noise_host(host) or host.lower() in NOISE_EMAIL_DOMAINS:
                continue
            self.add("email", f"{lpart}@{host}", local.start())

    def commands(self) -> None:
        text = self.text
        for anchor in _COMMAND_ANCHORS:
            for m in anchor.finditer(text):
                p = m.start()
                prev = self.before(p)
                if prev in _WORD or prev in "-.":
                    continue
                start = p
                if text[max(0, p - 8) : p] == "busybox " and self.line_start(p) <= p - 8:
                    start = p - 8
                seg = _COMMAND_SEGMENT.match(text, p)
                end = seg.end() if seg else self.line_end(p)
                value = text[start:end].rstrip().rstrip("\"')")
                if _COMMAND_TARGET.search(value, p - start) is None:
                    continue
                self.add("command", value, start)

    def irc(self) -> None:
        text = self.text
        for anchor in _IRC_ANCHORS:
            for m in anchor.finditer(text):
                p = m.start()
                if self.before(p) in _WORD:
                    continue
                word = m.group()[:-1]
                form = _IRC_FORMS[word].match(text, p)
                if form is None:
                    continue
                value = text[p : self.line_end(p)].rstrip()
                self.add("irc-command", value[:120], p)
                self.irc_anchors.append(p)
                if word == "JOIN":
                    chan = form.group("chan")
                    if chan and "%" not in chan:
                        self.add("irc-channel", chan, form.start("chan"))
        self.irc_offsets = sorted(self.offset(p) for p in self.irc_anchors)

    def registry(self) -> None:
        seen: set[int] = set()
        for m in _REG_ANCHOR.finditer(self.text):
            i = self.index(m.start())
            if i in seen:
                continue
            seen.add(i)
            base = self.starts[i]
            for k in _REG_KEY.finditer(self.table.texts[i]):
                value = k.group().lstrip("\\").replace("\\\\", "\\")
                lead = len(k.group()) - len(k.group().lstrip("\\"))
                self.add("registry", value, base + k.start() + lead)

    def windows_paths(self) -> None:
        text = self.text
        for m in _DRIVE_ANCHOR.finditer(text):
            p = m.start() - 1
            if p < 0 or text[p] not in _DRIVE_LETTERS:
                continue
            if self.before(p) in _WORD:
                continue
            path = _DRIVE_PATH.match(text, p)
            if path is None:
                continue
            value = path.group().rstrip(".,;)")
            if len(value.rstrip("\\")) < 6 or not any(c.isalnum() for c in value[3:]):
                continue  # "R:\\Sg", "A:\\$": bytes of code, not a path
            self.spans.append((p, p + len(value)))
            self.add("path", value.replace("\\\\", "\\"), p)
        for anchor, pattern in ((_ENV_ANCHOR, _ENV_PATH), (_DEVICE_ANCHOR, _DEVICE_PATH)):
            for m in anchor.finditer(text):
                p = m.start()
                path = pattern.match(text, p)
                if path is None:
                    continue
                value = path.group().rstrip(".,;)")
                self.spans.append((p, p + len(value)))
                if value[4:].upper() in _DOS_DEVICES:
                    continue
                self.add("path", value.replace("\\\\", "\\") if anchor is _ENV_ANCHOR
                         else value, p)

    def unix_paths(self) -> None:
        text = self.text
        for m in _UNIX_ANCHOR.finditer(text):
            p = m.start()
            prev = self.before(p)
            if prev in _WORD or prev in "./-%$":
                continue
            token = _UNIX_TOKEN.match(text, p)
            if token is None:
                continue
            value = token.group().rstrip(".")
            if _UNIX_INTEREST.match(value) is None:
                continue
            self.spans.append((p, p + len(value)))
            if prev == "~":
                p, value = p - 1, "~" + value
            self.add("path", value, p)

    def hosts(self) -> None:
        """Domains, IPv4 and IPv6 in free text, with ``:port``; then the IRC view."""
        text = self.text
        spans = sorted(self.spans)
        span_starts = [s for s, _ in spans]
        servers: list[_Hit] = []

        def host_hit(kind: IocType, value: str, start: int, port: int | None,
                     irc_name: bool) -> None:
            self.add(kind, value, start, port)
            if port is not None or irc_name:
                servers.append(_Hit("irc-server", value, start, port))

        for m in _TLD_ANCHOR.finditer(text):
            end = m.end()
            q = m.start()
            while q > 0 and text[q - 1] in _DOMAIN_CHARS:
                q -= 1
            if self.taken(q, span_starts, spans):
                continue
            name = text[q:end]
            if (
                name[0] in ".-"
                or self.before(q) in "@/\\%$_"
                or text[end : end + 1] == "("
                or text[max(0, q - 2) : q] == "->"
                or _ASSIGNED.match(text, end) is not None
            ):
                continue
            if not _text_domain_ok(name) or is_noise_host(name):
                continue
            port_m = _PORT_AFTER.match(text, end)
            port = _port(port_m.group(1)) if port_m else None
            value = name.lower()
            host_hit("domain", value, q, port, value.startswith("irc"))

        for m in _IPV4_ANCHOR.finditer(text):
            p = m.start()
            q = p
            while q > 0 and p - q < 3 and text[q - 1].isdigit():
                q -= 1
            if q == p or self.taken(q, span_starts, spans):
                continue
            prev = self.before(q)
            if prev in _WORD or prev in ".-":
                continue
            end = m.end()
            if text[end : end + 1] in _WORD:
                continue
            value = text[q:end]
            line = self.line_start(q)
            if _VERSION_BEFORE.search(text, max(line, q - 16), q) or not ipv4_ok(value):
                continue
            if q == line and end == self.line_end(q) and self.after_version_key(q):
                continue
            port_m = _PORT_AFTER.match(text, end)
            port = _port(port_m.group(1)) if port_m else None
            host_hit("ipv4", value, q, port, False)

        last_end = -1
        for m in _IPV6_ANCHOR.finditer(text):
            p = m.start()
            if p < last_end:
                continue
            q = p
            while q > 0 and text[q - 1] in _IPV6_CHARS:
                q -= 1
            r = p
            n = len(text)
            while r < n and text[r] in _IPV6_CHARS:
                r += 1
            last_end = r
            cand = text[q:r].rstrip(".")
            if cand.endswith(":") and not cand.endswith("::"):
                cand = cand[:-1]
            if self.taken(q, span_starts, spans):
                continue
            after = text[q + len(cand) : q + len(cand) + 1]
            if self.before(q) in _WORD or (after and after in _WORD):
                continue
            canonical = ipv6_value(cand)
            if canonical is None:
                continue
            port = None
            if self.before(q) == "[" and after == "]":
                port_m = _PORT_AFTER.match(text, q + len(cand) + 1)
                port = _port(port_m.group(1)) if port_m else None
            host_hit("ipv6", canonical, q, port, False)

        # IRC servers: a strong name or port, or any host:port near an IRC command.
        for s in servers:
            strong = (s.value.startswith("irc") and s.port is not None) or (
                s.port in IRC_PORTS
            )
            if strong or self.near_irc(s.pos):
                self.hits.append(s)

    def channels(self) -> None:
        """A string that is just ``#chan [key]``, near an IRC command: a bot's config."""
        if not self.irc_anchors:
            return
        text = self.text
        for p in (m.start() for m in re.finditer("#", text)):
            if self.before(p) != "\n":
                continue
            end = self.line_end(p)
            if _CHANNEL_LINE.fullmatch(text, p, end) is None:
                continue
            if _NOT_CHANNELS.match(text, p, end) or not self.near_irc(p):
                continue
            chan = text[p:end].split(" ", 1)[0]
            self.add("irc-channel", chan, p)

    # -- result ------------------------------------------------------------------------
    def results(self, max_per_type: int) -> list[IOC]:
        best: dict[tuple[str, str, int | None], tuple[int, _Hit]] = {}
        for hit in self.hits:
            offset = self.offset(hit.pos)
            key = (hit.type, hit.value.casefold(), hit.port)
            known = best.get(key)
            if known is None or offset < known[0]:
                best[key] = (offset, hit)
        per_type: dict[str, int] = {}
        out: list[IOC] = []
        for offset, hit in sorted(best.values(), key=lambda x: (x[0], x[1].type)):
            count = per_type.get(hit.type, 0)
            if count >= max_per_type:
                continue
            per_type[hit.type] = count + 1
            i = self.index(hit.pos)
            out.append(
                IOC(
                    type=hit.type,
                    value=hit.value,
                    offset=offset,
                    encoding=self.table.encoding_at(i),
                    port=hit.port,
                    context=self.context(i, hit),
                )
            )
        return out

    def context(self, i: int, hit: _Hit) -> str | None:
        text = self.table.texts[i]
        if text.strip() == hit.value:
            return None
        if len(text) <= CONTEXT_MAX:
            return text
        rel = hit.pos - self.starts[i]
        lo = max(0, min(rel - CONTEXT_MAX // 4, len(text) - CONTEXT_MAX))
        return text[lo : lo + CONTEXT_MAX]


def _strip_trailing(url: str) -> str:
    while url:
        last = url[-1]
        if last in _TRAILING or (last == ")" and url.count("(") < url.count(")")):
            url = url[:-1]
        else:
            break
    return url


def _split_authority(rest: str) -> tuple[str, str, str]:
    """``authority``, the separator and the path (with query) of a URL without scheme."""
    cut = len(rest)
    for sep in "/?#":
        i = rest.find(sep)
        if 0 <= i < cut:
            cut = i
    return rest[:cut], rest[cut : cut + 1], rest[cut:]


def _parse_authority(authority: str) -> tuple[str, int | None, int] | None:
    """(host, port, host's index in ``authority``), or None when malformed."""
    at = authority.rfind("@")
    base = at + 1
    hostport = authority[base:]
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            return None
        host, tail = hostport[1:close], hostport[close + 1 :]
        base += 1
    else:
        host, sep, tail = hostport.partition(":")
        tail = sep + tail
    port: int | None = None
    if tail:
        if not tail.startswith(":"):
            return None
        port = _port(tail[1:])
        if port is None:
            return None
    if not host:
        return None
    return host, port, base


def _host_kind(host: str) -> IocType | None:
    if ":" in host:
        return "ipv6" if ipv6_value(host) else None
    if host.replace(".", "").isdigit():
        return "ipv4" if host.count(".") == 3 and ipv4_ok(host) else None
    return "domain" if _host_domain_ok(host) else None


def _table(strings: Iterable[FoundString] | StringTable) -> StringTable:
    if isinstance(strings, StringTable):
        return strings
    ascii_part: list[FoundString] = []
    utf16_part: list[FoundString] = []
    for s in strings:
        (ascii_part if s.encoding == "ascii" else utf16_part).append(s)
    both = ascii_part + utf16_part
    return StringTable(
        [s.offset for s in both], [s.text.replace("\n", " ") for s in both], len(ascii_part)
    )


def find_iocs(
    strings: Iterable[FoundString] | StringTable,
    *,
    max_per_type: int = DEFAULT_MAX_PER_TYPE,
) -> list[IOC]:
    """The IOCs in ``strings`` (`FoundString` objects, or the `StringTable` of
    `scan_strings`, which is faster), sorted by offset; see the module doc for the rules."""
    scan = _Scan(_table(strings))
    scan.urls()
    scan.emails()
    scan.commands()
    scan.irc()
    scan.registry()
    scan.windows_paths()
    scan.unix_paths()
    scan.hosts()
    scan.channels()
    return scan.results(max_per_type)
