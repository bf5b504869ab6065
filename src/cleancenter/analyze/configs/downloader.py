"""Downloaders: the URLs a sample fetches and runs.

Shell command lines (ELF strings, scripts; strings are joined with newlines, so a
script's lines are read in order):

- fetch commands: ``wget``, ``curl``, ``tftp``, ``ftpget``, alone or after ``busybox``
  (``/bin/busybox wget ...``), up to the next ``;``, ``|``, ``&``, newline or backquote:
  ``wget [-O file] URL`` (a bare ``host/path`` gets ``http://``), ``curl [-o file|-O] URL``,
  ``tftp -g -r remote [-l local] host [port]`` or ``tftp host -c get remote [local]``
  (``tftp://host[:port]/remote``), ``ftpget [-u user] [-p pass] [-P port] host local
  remote`` (``ftp://host[:port]/remote``); the host must be an IPv4 address or a domain
  under a real public suffix, so usage texts (``wget [OPTIONS] URL``) and ``%s`` formats
  are not targets;
- and run: within `RUN_WINDOW` characters after the fetch, ``chmod`` (``+x``/octal) of the
  fetched file, ``./file``, ``sh file`` (``bash``/``busybox sh``...), or the output piped
  into a shell (``curl URL | sh``, ``wget -O- URL | sh``). A fetch that is not run is no
  configuration (busybox and wget carry fetch texts in their help);
- drop path: the ``-O``/``-o``/``-l``/local name when absolute, else joined to the last
  ``cd DIR`` before the fetch (in the same `RUN_WINDOW`; of ``cd A || cd B``, ``A``).

PE: ``URLDownloadToFileA/W`` and one of ``ShellExecute``/``WinExec``/``CreateProcess``
among its strings (import names are strings too), and the http/https/ftp URLs of its
strings (the URL rules and noise filters of `cleancenter.analyze.iocs`); drop paths are
its Windows paths to executables (``%TEMP%\\x.exe``, ``C:\\...\\x.exe``).

Output: MACO ``http`` entries (``ftp`` for ftp URLs; tftp URLs as ``http`` with
``protocol="tftp"``), usage ``download``; ``paths`` usage ``install``.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass
from urllib.parse import urlsplit

from maco.model import ConnUsageEnum, ExtractorModel  # type: ignore[import-untyped,unused-ignore]

from cleancenter.analyze.configs import Context
from cleancenter.analyze.configs._hosts import host_kind, port_value
from cleancenter.analyze.iocs import find_iocs

FAMILY = "Downloader"
COMMUNITY_PATTERNS = ("*downloader*", "*dropper*")
RUN_WINDOW = 600
MAX_ITEMS = 50

_FETCH = re.compile(r"(?<![\w.\-/])(?:(?:/bin/|/usr/bin/)?busybox\s+)?(wget|curl|tftp|ftpget)"
                    r"[ \t]+([^;|&\n`]*)")
_CD = re.compile(r"(?<![\w.\-])cd[ \t]+(/[^\s;|&`]*)")
_OR = re.compile(r"[ \t]*\|\|[ \t]*")
_PIPE_SH = re.compile(r"[ \t]*\|[ \t]*(?:(?:/bin/)?busybox[ \t]+)?(?:/bin/)?(?:ba|da|z)?sh\b")
_WIN_EXE_PATH = re.compile(
    r"(?i)(?:%[a-z_]+%|[c-z]:)\\(?:[^\\/:*?\"<>|\r\n]+\\)*[^\\/:*?\"<>|\r\n]+"
    r"\.(?:exe|dll|scr|bat|cmd|ps1|vbs|js|com|pif)\Z")
_PE_RUN = ("ShellExecute", "WinExec", "CreateProcess")
_PE_FETCH = ("URLDownloadToFileA", "URLDownloadToFileW", "URLDownloadToFile")


@dataclass
class Fetch:
    url: str
    file: str | None  # local name, as written
    pos: int
    end: int


def _tokens(args: str) -> list[str]:
    try:
        return shlex.split(args, posix=True)
    except ValueError:
        return args.split()


def _url(target: str) -> str | None:
    """``target`` as a URL with a valid host, or None."""
    if "%" in target or "$" in target:
        return None
    url = target if "://" in target else "http://" + target
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises for a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https", "ftp", "tftp"):
        return None
    if "://" not in target and "/" not in target:
        return None  # a bare word or name is no download target
    return url if host_kind(host) else None


def _parse(cmd: str, args: str) -> tuple[str, str | None] | None:
    toks = _tokens(args)
    if cmd in ("wget", "curl"):
        url: str | None = None
        out: str | None = None
        remote_name = False
        i = 0
        while i < len(toks):
            t = toks[i]
            if t in ("-O", "-o", "--output-document", "--output") and i + 1 < len(toks):
                if cmd == "curl" and t == "-O":
                    remote_name = True
                else:
                    out = toks[i + 1]
                    i += 1
            elif t.startswith(("--output-document=", "--output=")):
                out = t.split("=", 1)[1]
            elif cmd == "wget" and t.startswith("-O") and len(t) > 2:
                out = t[2:]
            elif cmd == "curl" and t in ("-O", "--remote-name"):
                remote_name = True
            elif not t.startswith("-") and url is None:
                url = _url(t)
            i += 1
        if url is None:
            return None
        if out in ("-", None) and (cmd == "wget" or remote_name):
            out = posixpath.basename(urlsplit(url).path) or None if out is None else out
        return url, out
    if cmd == "tftp":
        remote = local = host = port = None
        if "-c" in toks:  # tftp host [port] -c get remote [local]
            i = toks.index("-c")
            rest = toks[i + 1:]
            if len(rest) >= 2 and rest[0] == "get":
                remote = rest[1]
                local = rest[2] if len(rest) > 2 else None
            positional = [t for t in toks[:i] if not t.startswith("-")]
        else:
            positional = []
            i = 0
            while i < len(toks):
                t = toks[i]
                if t in ("-r", "-l", "-b") and i + 1 < len(toks):
                    if t == "-r":
                        remote = toks[i + 1]
                    elif t == "-l":
                        local = toks[i + 1]
                    i += 1
                elif not t.startswith("-"):
                    positional.append(t)
                i += 1
        if positional:
            host = positional[0]
            port = positional[1] if len(positional) > 1 else None
        if not remote or not host or not host_kind(host) or "%" in remote:
            return None
        if port is not None and port_value(port) is None:
            return None
        url = f"tftp://{host}{':' + port if port else ''}/{remote.lstrip('/')}"
        return url, local or posixpath.basename(remote)
    if cmd == "ftpget":
        positional = []
        i = 0
        port = None
        while i < len(toks):
            t = toks[i]
            if t in ("-u", "-p", "-P") and i + 1 < len(toks):
                if t == "-P":
                    port = toks[i + 1]
                i += 1
            elif not t.startswith("-"):
                positional.append(t)
            i += 1
        if len(positional) < 3 or not host_kind(positional[0]) or "%" in positional[2]:
            return None
        if port is not None and port_value(port) is None:
            return None
        host, local, remote = positional[:3]
        return f"ftp://{host}{':' + port if port else ''}/{remote.lstrip('/')}", local
    return None


def _runs(text: str, fetch: Fetch) -> bool:
    """The fetched file is run (chmod +x, ./f, sh f) or the fetch is piped to a shell."""
    if _PIPE_SH.match(text, fetch.end):
        return True
    if not fetch.file or fetch.file == "-":
        return False
    name = re.escape(posixpath.basename(fetch.file))
    after = text[fetch.end: fetch.end + RUN_WINDOW]
    path = r"(?:[^\s;|&`'\"]*/)?" + name + r"(?![\w.\-])"
    run = re.compile(
        r"chmod[ \t]+(?:-\w+[ \t]+)*(?:\+x|[0-7]{3,4}|[ugoa]*\+[rw]*x[rw]*)[ \t]+(?:\S+[ \t]+)*"
        + path
        + r"|(?<![\w.\-])\./" + name + r"(?![\w.\-])"
        + r"|(?<![\w.\-])(?:(?:/bin/)?busybox[ \t]+)?(?:/bin/)?(?:ba|da|z)?sh[ \t]+" + path
        + r"|(?:^|[;&|\n][ \t]*)(?:/[^\s;|&`'\"]+/)" + name + r"(?![\w.\-])")
    return run.search(after) is not None


def _drop_path(text: str, fetch: Fetch) -> str | None:
    if not fetch.file or fetch.file == "-":
        return None
    if fetch.file.startswith("/"):
        return posixpath.normpath(fetch.file)
    cds = list(_CD.finditer(text, max(0, fetch.pos - RUN_WINDOW), fetch.pos))
    if not cds:
        return None
    k = len(cds) - 1  # ``cd /tmp || cd /var/run``: the first that works, /tmp
    while k > 0 and _OR.fullmatch(text, cds[k - 1].end(), cds[k].start()):
        k -= 1
    return posixpath.normpath(posixpath.join(cds[k].group(1), fetch.file))


def shell_downloads(text: str) -> list[tuple[str, str | None]]:
    """(URL, drop path) of every fetch-and-run in ``text``, in order, deduplicated."""
    found: dict[str, str | None] = {}
    for m in _FETCH.finditer(text):
        parsed = _parse(m.group(1), m.group(2))
        if parsed is None:
            continue
        fetch = Fetch(parsed[0], parsed[1], m.start(), m.end())
        if not _runs(text, fetch):
            continue
        path = _drop_path(text, fetch)
        if fetch.url not in found or found[fetch.url] is None:
            found[fetch.url] = path
        if len(found) >= MAX_ITEMS:
            break
    return list(found.items())


def _http(url: str) -> ExtractorModel.Http | ExtractorModel.FTP:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "ftp":
        return ExtractorModel.FTP(hostname=parts.hostname, port=parts.port,
                                  path=parts.path or None, usage=ConnUsageEnum.download)
    return ExtractorModel.Http(uri=url, protocol=scheme, hostname=parts.hostname,
                               port=parts.port, path=parts.path or None,
                               query=parts.query or None, usage=ConnUsageEnum.download)


def _pe_downloads(ctx: Context) -> tuple[list[str], list[str]] | None:
    data = ctx.data
    def has(word: str) -> bool:
        return word.encode() in data or word.encode("utf-16-le") in data
    if not any(has(w) for w in _PE_FETCH) or not any(has(w) for w in _PE_RUN):
        return None
    urls: list[str] = []
    paths: list[str] = []
    for ioc in find_iocs(ctx.strings):
        if ioc.type == "url" and ioc.value.lower().startswith(("http://", "https://",
                                                               "ftp://")):
            urls.append(ioc.value)
        elif ioc.type == "path" and _WIN_EXE_PATH.match(ioc.value):
            paths.append(ioc.value)
    if not urls:
        return None
    return list(dict.fromkeys(urls))[:MAX_ITEMS], list(dict.fromkeys(paths))[:MAX_ITEMS]


def extract(ctx: Context) -> ExtractorModel | None:
    urls: list[str] = []
    paths: list[str] = []
    methods: list[str] = []
    if ctx.kind == "pe" or ctx.data[:2] == b"MZ":
        pe = _pe_downloads(ctx)
        if pe is not None:
            urls += pe[0]
            paths += pe[1]
            methods.append("URLDownloadToFile")
    table = ctx.strings
    text = "\n".join(table.texts[: table.ascii_count])
    for url, path in shell_downloads(text):
        urls.append(url)
        if path:
            paths.append(path)
    if not urls:
        return None
    if len(methods) == 0 or len(urls) > len(methods):
        methods.append("shell")
    urls = list(dict.fromkeys(urls))
    http = [c for c in (_http(u) for u in urls) if isinstance(c, ExtractorModel.Http)]
    ftp = [c for c in (_http(u) for u in urls) if isinstance(c, ExtractorModel.FTP)]
    return ExtractorModel(
        family=FAMILY,
        category=["downloader"],
        http=http,
        ftp=ftp,
        paths=[ExtractorModel.Path(path=p, usage="install") for p in dict.fromkeys(paths)],
        other={"downloader": {"urls": urls, "methods": sorted(set(methods))}},
    )
