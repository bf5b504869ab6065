"""Linux autostart places, read from a root folder (``/`` or a mounted image).

What is listed, and why only that:

- crontabs (``/etc/crontab``, ``/etc/cron.d/*``, ``/var/spool/cron/crontabs/*``,
  ``/var/spool/cron/*``): one entry per job line; environment lines are not jobs;
- ``/etc/cron.{hourly,daily,weekly,monthly}/*``: one entry per script (run-parts runs it);
- systemd: every ``*.service`` / ``*.timer`` under ``/etc/systemd/system`` (and drop-in
  ``*.conf`` files there), vendor units only when a link under ``/etc/systemd/system``
  enables them (so a stock ``/lib/systemd/system`` costs nothing), the user units under
  ``~/.config/systemd/user``; one entry per ``ExecStart``/``ExecStartPre``/
  ``ExecStartPost`` line, one per timer;
- ``/etc/rc.local``: every command line; ``/etc/init.d/*``: every executable script;
- shell profiles (``/etc/profile``, ``/etc/profile.d/*.sh``, ``/etc/bash.bashrc``,
  ``/etc/bashrc`` and the users' ``.bashrc``, ``.profile``, ``.bash_profile``,
  ``.bash_login``, ``.zshrc``): these are mostly settings, so only a line that *starts
  something* is listed: its command is an absolute (or home-relative) path, or it
  fetches or detaches (wget, curl, tftp, nc, socat, nohup, setsid, base64, a lone ``&``),
  or it names a temporary folder (/tmp, /var/tmp, /dev/shm);
- ``/etc/ld.so.preload``: every line; ``~/.ssh/authorized_keys{,2}``: every key line
  (a planted key is the persistence of SSH bots);
- XDG autostart: ``~/.config/autostart/*.desktop`` and ``/etc/xdg/autostart/*.desktop``.

Nothing found is ever executed; scripts are listed by path (their content is the file
check's business).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from cleancenter.cleaner.persistence.entries import PersistenceEntry
from cleancenter.cleaner.persistence.paths import in_root, list_dir, read_text, virtual

_ENV_LINE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\s*=")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
# words that run the next word: skipped to find the program a command starts
_WRAPPERS = frozenset({
    "nohup", "exec", "setsid", "nice", "ionice", "env", "sudo", "command", "time",
    "chrt", "taskset", "stdbuf", "eval", "if", "elif", "then", "do", "else", "while",
    "until", "{", "!",
})
# builtins and tests start no program of their own: the next command is the one
_BUILTINS = frozenset({
    "[", "[[", "test", "cd", "set", "export", "unset", "echo", "printf", "true", "false",
    ":", "exit", "return", "trap", "ulimit", "umask", "alias", "local", "readonly",
    "shopt", "source", ".", "fi", "done", "esac", "}", "]]", "]", "case", "for",
})
_OPERATOR_CHARS = frozenset(";|&<>()")
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ash", "ksh"})
_CONTROL_ONLY = frozenset({"fi", "done", "esac", "then", "else", "do", "{", "}", ";;", ")"})
_PROFILE_HINT = re.compile(
    r"\b(?:wget|curl|tftp|nc|ncat|socat|nohup|setsid|base64)\b"
    r"|/(?:tmp|var/tmp|dev/shm)/"
    r"|(?<![&>|<])&(?![&>])"  # a lone & runs something in the background
)
_KEY_TYPES = re.compile(r"^(?:ssh-|ecdsa-|sk-ssh-|sk-ecdsa-)")
_UNIT_EXEC_KEYS = ("ExecStart", "ExecStartPre", "ExecStartPost")
_INIT_D_SKIP = frozenset({"README", "skeleton", "functions", "rc", "rcS", "halt", "killall"})


def posix_program(command: str) -> str | None:
    """The program a shell command line starts, best effort (None if it cannot tell).

    Takes the first simple command (split at ``;``, ``|``, ``&&``...) that is not a
    shell builtin or test, skipping variable assignments and wrappers (``nohup``,
    ``env``...), and looks through ``sh -c '...'`` and ``sh script``.
    """
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        words = list(lexer)
    except ValueError:
        words = command.split()
    simple: list[list[str]] = [[]]
    redirect = False
    for word in words:
        if word and set(word) <= _OPERATOR_CHARS:
            redirect = "<" in word or ">" in word  # its target is a file, not a command
            if not redirect:
                simple.append([])
        elif redirect:
            redirect = False
        else:
            simple[-1].append(word)
    for part in simple:
        index = 0
        while index < len(part) and (part[index] in _WRAPPERS or _ASSIGNMENT.match(part[index])):
            wrapper = part[index] in _WRAPPERS
            index += 1
            while wrapper and index < len(part) and part[index].startswith("-"):
                index += 1
        if index >= len(part) or part[index] in _BUILTINS:
            continue
        program = part[index]
        if PurePosixPath(program).name in _SHELLS:
            rest = part[index + 1:]
            if len(rest) >= 2 and rest[0] == "-c":
                return posix_program(rest[1]) or program
            script = next((word for word in rest if not word.startswith("-")), None)
            return script or program
        return program
    return None


def cron_command(line: str, system_format: bool) -> str | None:
    """The command of a crontab line, None for comments, blanks and ``VAR=value`` lines.

    ``system_format``: /etc/crontab and /etc/cron.d lines carry a user name field.
    """
    text = line.strip()
    if not text or text.startswith("#") or _ENV_LINE.match(text):
        return None
    fields = 2 if text.startswith("@") else 6  # @reboot / five time fields, then the command
    if system_format:
        fields += 1
    parts = text.split(None, fields - 1)
    return parts[-1] if len(parts) == fields else None


def _profile_line_starts_program(text: str) -> bool:
    """True when a profile line runs a program (see the module docstring)."""
    if _PROFILE_HINT.search(text):
        return True
    program = posix_program(text)
    return program is not None and program.startswith(("/", "~/", "$HOME/", "${HOME}/", "./"))


class _Scan:
    """Collects entries and errors for one root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.entries: list[PersistenceEntry] = []
        self.errors: list[str] = []

    def real(self, path: str) -> Path:
        return in_root(self.root, path)

    def text(self, path: str) -> str | None:
        return read_text(self.root, path, self.errors)

    def names(self, folder: str) -> list[str]:
        return [name for name in list_dir(self.root, folder, self.errors)
                if not name.startswith(".")]

    def is_file(self, path: str) -> bool:
        try:
            return self.real(path).is_file()
        except OSError:
            return False

    def add(self, location: str, path: str, command: str, *, line: int | None = None,
            whole_file: bool = False, program: str | None = None, guess: bool = True,
            label: str | None = None) -> None:
        """Record one entry; ``program`` is guessed from ``command`` unless given or
        ``guess`` is False (a timer, a plain key: they start nothing themselves)."""
        try:
            real = str(self.real(path))
        except OSError:
            real = path
        where = f"{path}:{line}" if line is not None and not whole_file else path
        if label:
            where = f"{where} ({label})"
        self.entries.append(PersistenceEntry(
            system="linux", location=location, where=where, command=command,
            program=program if program is not None or not guess else posix_program(command),
            file=real, line=None if whole_file else line, whole_file=whole_file))

    # -- cron --------------------------------------------------------------------------

    def crontab(self, path: str, *, system_format: bool, location: str) -> None:
        text = self.text(path)
        if text is None:
            return
        jobs = [(number, command) for number, line in enumerate(text.splitlines(), 1)
                if (command := cron_command(line, system_format)) is not None]
        alone = location == "cron.d" and len(jobs) == 1
        for number, command in jobs:
            self.add(location, path, command, line=number, whole_file=alone)

    def cron(self) -> None:
        self.crontab("/etc/crontab", system_format=True, location="crontab")
        for name in self.names("/etc/cron.d"):
            self.crontab(f"/etc/cron.d/{name}", system_format=True, location="cron.d")
        for folder in ("/var/spool/cron/crontabs", "/var/spool/cron"):
            for name in self.names(folder):
                path = f"{folder}/{name}"
                if self.is_file(path):
                    self.crontab(path, system_format=False, location="crontab")
        for period in ("hourly", "daily", "weekly", "monthly"):
            folder = f"/etc/cron.{period}"
            for name in self.names(folder):
                path = f"{folder}/{name}"
                if self.is_file(path):
                    self.add("cron-periodic", path, path, whole_file=True, program=path)

    # -- systemd -----------------------------------------------------------------------

    def unit(self, path: str, *, drop_in: bool = False) -> None:
        text = self.text(path)
        if text is None:
            return
        timer: list[str] = []
        for number, section, key, value in _unit_lines(text):
            if section == "Service" and key in _UNIT_EXEC_KEYS and value:
                command = value.lstrip("-@+!:")
                self.add("systemd-unit", path, command, line=number, whole_file=True,
                         label=key)
            elif section == "Timer" and not drop_in:
                timer.append(f"{key}={value}")
        if path.endswith(".timer") and not drop_in:
            if not any(item.startswith("Unit=") for item in timer):
                timer.append(f"Unit={PurePosixPath(path).stem}.service")
            self.add("systemd-unit", path, "; ".join(timer), whole_file=True, guess=False)

    def units_under(self, base: str) -> None:
        """Units in ``base`` (recursively) and, through its links, the units they enable."""
        try:
            top = self.real(base)
        except OSError as exc:
            self.errors.append(f"{base}: {exc.strerror or exc}")
            return
        if not top.is_dir():
            return
        seen: set[Path] = set()
        walk_errors: list[OSError] = []
        for folder, dirs, files in os.walk(top, onerror=walk_errors.append):
            dirs.sort()
            vfolder = virtual(self.root, Path(folder))
            drop_in_dir = folder.endswith((".service.d", ".timer.d"))
            for name in sorted(files):
                vpath = f"{vfolder}/{name}"
                if drop_in_dir and name.endswith(".conf"):
                    self.unit(vpath, drop_in=True)
                    continue
                if not name.endswith((".service", ".timer")):
                    continue
                try:
                    target = self.real(vpath)
                except OSError as exc:
                    self.errors.append(f"{vpath}: {exc.strerror or exc}")
                    continue
                if target == self.real("/dev/null") or target in seen:
                    continue  # masked, or already listed through another link
                seen.add(target)
                if not target.is_file():
                    continue  # a dangling enable link: nothing starts
                self.unit(virtual(self.root, target))
        self.errors.extend(f"{exc.filename}: cannot list: {exc.strerror or exc}"
                           for exc in walk_errors)

    # -- scripts, profiles, keys, desktop ------------------------------------------------

    def rc_local(self) -> None:
        text = self.text("/etc/rc.local")
        if text is None:
            return
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if (not stripped or stripped.startswith("#") or stripped in _CONTROL_ONLY
                    or re.fullmatch(r"exit(?:\s+\d+)?", stripped)):
                continue
            self.add("rc.local", "/etc/rc.local", stripped, line=number)

    def init_d(self) -> None:
        for name in self.names("/etc/init.d"):
            if name in _INIT_D_SKIP or name.endswith((".dpkg-old", ".dpkg-dist", "~")):
                continue
            path = f"/etc/init.d/{name}"
            try:
                real = self.real(path)
                executable = real.is_file() and os.stat(real).st_mode & 0o111
            except OSError:
                continue
            if executable:
                self.add("init.d", path, path, whole_file=True, program=path)

    def profile(self, path: str) -> None:
        text = self.text(path)
        if text is None:
            return
        for number, stripped in _content_lines(text):
            if _profile_line_starts_program(stripped):
                self.add("shell-profile", path, stripped, line=number)

    def ld_preload(self) -> None:
        text = self.text("/etc/ld.so.preload")
        if text is None:
            return
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.split("#", 1)[0].strip()
            if stripped:
                first = re.split(r"[\s:]+", stripped)[0]
                self.add("ld.so.preload", "/etc/ld.so.preload", stripped, line=number,
                         program=first)

    def authorized_keys(self, path: str) -> None:
        text = self.text(path)
        if text is None:
            return
        for number, stripped in _content_lines(text):
            program = None  # a key starts nothing by itself...
            if not _KEY_TYPES.match(stripped):  # ...unless its options force a command
                forced = re.search(r'command="((?:[^"\\]|\\.)*)"', stripped)
                if forced:
                    program = posix_program(forced.group(1).replace('\\"', '"'))
            self.add("authorized_keys", path, stripped, line=number, program=program,
                     guess=False)

    def desktop(self, path: str) -> None:
        text = self.text(path)
        if text is None:
            return
        section, command, line_no, hidden = "", None, 0, False
        for number, line in enumerate(text.splitlines(), 1):
            stripped = line.strip()
            if stripped.startswith("["):
                section = stripped.strip("[]")
            elif section == "Desktop Entry" and "=" in stripped:
                key, _, value = stripped.partition("=")
                key, value = key.strip(), value.strip()
                if key == "Exec" and command is None:
                    command, line_no = value, number
                elif key == "Hidden" and value.lower() == "true":
                    hidden = True
        if command and not hidden:
            self.add("xdg-autostart", path, command, line=line_no, whole_file=True,
                     label="Exec")


def _unit_lines(text: str) -> list[tuple[int, str, str, str]]:
    """(line number, section, key, value) of a systemd unit, continuations joined."""
    result: list[tuple[int, str, str, str]] = []
    section = ""
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending:
            start = number
            if not line or line.startswith(("#", ";")):
                continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line:
            key, _, value = line.partition("=")
            result.append((start, section, key.strip(), value.strip()))
    return result


def _content_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based number, stripped line) of every line that is not blank or a comment."""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            yield number, stripped


def default_homes(root: Path) -> list[str]:
    """``/root``, ``/home/*`` on the scanned system, plus ``$HOME`` when it is this one."""
    homes = ["/root"]
    errors: list[str] = []
    for name in list_dir(root, "/home", errors):
        try:
            if in_root(root, f"/home/{name}").is_dir():
                homes.append(f"/home/{name}")
        except OSError:
            continue
    if root == Path("/") and os.environ.get("HOME"):
        homes.append(os.environ["HOME"])
    return list(dict.fromkeys(homes))


def linux_entries(root: Path = Path("/"), homes: list[Path] | None = None
                  ) -> tuple[list[PersistenceEntry], list[str]]:
    """Every autostart entry under ``root``, and the errors met (an unreadable file).

    ``homes`` are home folders as seen on the scanned system (``/home/alice``); a path
    already under ``root`` is taken as it is. Default: `default_homes`.
    """
    scan = _Scan(root)
    if homes is None:
        home_paths = default_homes(root)
    else:
        home_paths = []
        for given in homes:
            if root != Path("/") and given.is_relative_to(root):
                home_paths.append(virtual(root, given))
            else:
                home_paths.append(given.as_posix())
    scan.cron()
    scan.units_under("/etc/systemd/system")
    scan.rc_local()
    scan.init_d()
    for path in ("/etc/profile", "/etc/bash.bashrc", "/etc/bashrc"):
        scan.profile(path)
    for name in scan.names("/etc/profile.d"):
        if name.endswith(".sh"):
            scan.profile(f"/etc/profile.d/{name}")
    scan.ld_preload()
    for name in scan.names("/etc/xdg/autostart"):
        if name.endswith(".desktop"):
            scan.desktop(f"/etc/xdg/autostart/{name}")
    for home_path in home_paths:
        home = home_path.rstrip("/")
        for name in (".bashrc", ".profile", ".bash_profile", ".bash_login", ".zshrc"):
            scan.profile(f"{home}/{name}")
        for name in ("authorized_keys", "authorized_keys2"):
            scan.authorized_keys(f"{home}/.ssh/{name}")
        scan.units_under(f"{home}/.config/systemd/user")
        for name in scan.names(f"{home}/.config/autostart"):
            if name.endswith(".desktop"):
                scan.desktop(f"{home}/.config/autostart/{name}")
    return scan.entries, scan.errors
