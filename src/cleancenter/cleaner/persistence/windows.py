"""Windows autostart places, read through registry views and an offline file system.

Views are keyed by where they are mounted: ``HKLM\\SOFTWARE``, ``HKLM\\SYSTEM`` and
``HKU\\<user>`` (one per NTUSER.DAT). What is listed:

- SOFTWARE: ``Run``/``RunOnce`` (also under ``Wow6432Node``, and the policy
  ``Policies\\Explorer\\Run``), Winlogon ``Shell``/``Userinit`` when they differ from the
  defaults, IFEO ``Debugger`` values, a non-empty ``AppInit_DLLs``;
- SYSTEM: services that start by themselves (``Start`` 0 boot, 1 system, 2 automatic) in
  the current control set (``CurrentControlSet`` live, ``Select\\Current`` offline);
- user hives: ``Run``/``RunOnce``, the legacy ``Windows\\Load``/``Run`` values and a
  user Winlogon ``Shell``;
- an offline root (a mounted system volume, or ``C:\\`` live): scheduled tasks
  (``Windows\\System32\\Tasks``, Exec actions) and the Startup folders.

Offline, the system drive is taken to be ``C:`` and environment variables get their
default values, so that program paths can be compared and found on the volume.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path, PureWindowsPath
from typing import Any

from defusedxml import DefusedXmlException  # type: ignore[import-untyped,unused-ignore]
from defusedxml.ElementTree import (  # type: ignore[import-untyped,unused-ignore]
    ParseError,
    fromstring,
)

from cleancenter.cleaner.persistence.entries import PersistenceEntry
from cleancenter.cleaner.persistence.paths import windows_in_root
from cleancenter.cleaner.persistence.registry import (
    HiveRegistry,
    RegData,
    RegistryError,
    RegistryKey,
    RegistryView,
    printable,
    value_of,
)

CURRENT_VERSION = "Microsoft\\Windows\\CurrentVersion"
NT_CURRENT_VERSION = "Microsoft\\Windows NT\\CurrentVersion"
# Winlogon values as Windows sets them (compared lower-case, without trailing commas)
WINLOGON_DEFAULTS = {
    "shell": frozenset({"explorer.exe", "c:\\windows\\explorer.exe"}),
    "userinit": frozenset({"c:\\windows\\system32\\userinit.exe", "userinit.exe"}),
}
TASKS_DIR = "C:\\Windows\\System32\\Tasks"
COMMON_STARTUP = "C:\\ProgramData\\Microsoft\\Windows\\Start Menu\\Programs\\StartUp"
USER_STARTUP = "AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\Startup"
MAX_TASK_BYTES = 1 << 20
AUTOSTART_TYPES = {0: "boot", 1: "system", 2: "automatic"}

_EXTENSIONS = r"exe|com|bat|cmd|dll|scr|pif|vbs|vbe|js|jse|wsf|ps1|sys|cpl|hta|msi|lnk|ocx"
_HAS_EXTENSION = re.compile(rf"\.(?:{_EXTENSIONS}),?$", re.IGNORECASE)
_ENV_VAR = re.compile(r"%([^%\\/\s]+)%")
_SYSTEM_ENV = {
    "systemroot": "C:\\Windows", "windir": "C:\\Windows", "systemdrive": "C:",
    "programfiles": "C:\\Program Files", "programw6432": "C:\\Program Files",
    "programfiles(x86)": "C:\\Program Files (x86)",
    "commonprogramfiles": "C:\\Program Files\\Common Files",
    "commonprogramfiles(x86)": "C:\\Program Files (x86)\\Common Files",
    "programdata": "C:\\ProgramData", "allusersprofile": "C:\\ProgramData",
    "public": "C:\\Users\\Public", "temp": "C:\\Windows\\Temp", "tmp": "C:\\Windows\\Temp",
}
# hosts whose real payload is their first argument (a DLL, a script)
_ARGUMENT_HOSTS = frozenset({
    "rundll32.exe", "rundll32", "regsvr32.exe", "regsvr32", "wscript.exe", "cscript.exe",
    "mshta.exe",
})
_SHELL_HOSTS = frozenset({"cmd.exe", "cmd"})
# cmd's own commands: a "cmd /c del ..." starts no other program
_CMD_BUILTINS = frozenset({
    "del", "erase", "rd", "rmdir", "md", "mkdir", "copy", "move", "ren", "rename", "echo",
    "type", "set", "if", "cd", "chdir", "exit", "call", "pushd", "popd", "for", "attrib",
})


# -- commands and program paths -----------------------------------------------------------

def environment(user: str | None) -> dict[str, str]:
    """Default values of the variables autostart entries use, for ``user`` if known."""
    env = dict(_SYSTEM_ENV)
    if user:
        profile = f"C:\\Users\\{user}"
        env.update({
            "userprofile": profile, "homedrive": "C:", "homepath": f"\\Users\\{user}",
            "username": user, "appdata": f"{profile}\\AppData\\Roaming",
            "localappdata": f"{profile}\\AppData\\Local",
            "temp": f"{profile}\\AppData\\Local\\Temp", "tmp": f"{profile}\\AppData\\Local\\Temp",
        })
    return env


def expand(text: str, env: Mapping[str, str]) -> str:
    """``%Var%`` replaced by its default value; unknown variables stay as they are."""
    return _ENV_VAR.sub(lambda m: env.get(m.group(1).lower(), m.group(0)), text)


def normalize_path(path: str) -> str:
    """A kernel or relative image path as a drive path (``\\SystemRoot\\x`` -> ``C:\\Windows``)."""
    path = path.strip().strip('"')
    for prefix in ("\\??\\", "\\\\?\\"):
        if path.startswith(prefix):
            path = path[len(prefix):]
    lowered = path.lower()
    if lowered.startswith("\\systemroot\\"):
        return "C:\\Windows" + path[len("\\systemroot"):]
    if lowered.startswith(("system32\\", "syswow64\\")):
        return "C:\\Windows\\" + path
    return path


def _split_program(text: str) -> tuple[str, str]:
    """(program, the rest) of a Windows command line."""
    text = text.strip()
    if text.startswith('"'):
        end = text.find('"', 1)
        if end < 0:
            return text[1:], ""
        return text[1:end], text[end + 1:]
    words = text.split(" ")
    if "\\" in words[0] and not _HAS_EXTENSION.search(words[0]):
        # an unquoted path with spaces (C:\Program Files\x.exe): up to the first word
        # with a program extension, as Windows itself tries it, never across an option
        for end in range(1, len(words)):
            if words[end].startswith(("/", "-")):
                break
            if _HAS_EXTENSION.search(words[end]):
                return " ".join(words[:end + 1]).rstrip(","), " ".join(words[end + 1:])
    return words[0].rstrip(","), " ".join(words[1:])


def windows_program(command: str, env: Mapping[str, str] | None = None) -> str | None:
    """The program (or DLL, script) a Windows command line starts, best effort.

    Looks through ``rundll32``/``regsvr32``/script hosts to their first argument and
    through ``cmd /c``.
    """
    text = expand(command, env or _SYSTEM_ENV).strip()
    if not text:
        return None
    program, rest = _split_program(text)
    if not program:
        return None
    name = PureWindowsPath(program).name.lower()
    if name in _SHELL_HOSTS:
        match = re.search(r"(?i)(?:^|\s)/[ck]\s+(.*)$", rest)
        if match:
            inner = match.group(1).strip()
            start = re.match(r'(?i)start(?:\s+/\w+)*(?:\s+"[^"]*")?\s+(.*)$', inner)
            if start:  # start ["title"] program
                inner = start.group(1)
            found = windows_program(inner, env)
            if found and found.lower() not in _CMD_BUILTINS:
                return found
    elif name in _ARGUMENT_HOSTS:
        for word in re.findall(r'"[^"]*"|\S+', rest):
            if not word.startswith(("/", "-")):
                return normalize_path(word.strip('"').split(",", 1)[0])
    return normalize_path(program)


def _text(data: RegData | None) -> str:
    if data is None:
        return ""
    if isinstance(data, list):
        return " ".join(data)
    if isinstance(data, bytes):
        return data.decode("utf-16-le", errors="replace").split("\x00", 1)[0]
    return str(data)


def _user_of(mount: str) -> str | None:
    """The user name in ``HKU\\name`` (None for a SID: its profile folder is unknown)."""
    _, _, name = mount.partition("\\")
    return None if not name or name.upper().startswith("S-1-") else name


class _Collector:
    """Entries and errors of one `windows_entries` run."""

    def __init__(self) -> None:
        self.entries: list[PersistenceEntry] = []
        self.errors: list[str] = []

    def registry(self, location: str, mount: str, key: str, value: str, command: str,
                 program: str | None, note: str = "", *, key_entry: bool = False) -> None:
        """One registry entry; ``key_entry`` when it is the key itself (a service)."""
        where = f"{mount}\\{key}"
        if not key_entry:
            where += f"\\{value or '(Default)'}"
        self.entries.append(PersistenceEntry(
            system="windows", location=location, where=where + note, command=command,
            program=program, registry={"hive": mount, "key": key, "value": value}))

    def each(self, mount: str, view: RegistryView, what: str, keys: list[RegistryKey],
             handle: Callable[[RegistryKey], None]) -> None:
        """``handle`` every key; damaged keys are counted into one error, not one each."""
        damaged: list[str] = []
        for key in keys:
            try:
                handle(key)
            except RegistryError as exc:
                damaged.append(str(exc).removeprefix(f"{view.source}: "))
        if damaged:
            self.errors.append(
                f"{view.source}: {len(damaged)} of {len(keys)} keys under {mount}\\{what} "
                f"could not be read and were skipped (first: {damaged[0]})")


# -- registry checks ------------------------------------------------------------------------

def _run_keys(out: _Collector, mount: str, view: RegistryView, base: str,
              env: Mapping[str, str]) -> None:
    paths = []
    for wow in ("", "Wow6432Node\\"):
        for sub, location in (("Run", "registry-run"), ("RunOnce", "registry-runonce"),
                              ("Policies\\Explorer\\Run", "registry-run")):
            paths.append((f"{base}{wow}{CURRENT_VERSION}\\{sub}", location))
    for path, location in paths:
        key = view.open_key(path)
        if key is None:
            continue
        for value in key.values():
            command = _text(value.data).strip()
            if command:
                out.registry(location, mount, key.path, value.name, command,
                             windows_program(command, env))


def _winlogon(out: _Collector, mount: str, view: RegistryView, base: str,
              env: Mapping[str, str], names: tuple[str, ...]) -> None:
    key = view.open_key(f"{base}{NT_CURRENT_VERSION}\\Winlogon")
    if key is None:
        return
    for value in key.values():
        name = value.name.lower()
        if name not in names:
            continue
        command = _text(value.data).strip()
        items = [item.strip() for item in command.split(",") if item.strip()]
        unusual = [item for item in items
                   if normalize_path(expand(item, env)).lower() not in WINLOGON_DEFAULTS[name]]
        if unusual:
            out.registry("winlogon", mount, key.path, value.name, command,
                         windows_program(unusual[0], env))


def _ifeo(out: _Collector, mount: str, view: RegistryView, env: Mapping[str, str]) -> None:
    for wow in ("", "Wow6432Node\\"):
        path = f"{wow}{NT_CURRENT_VERSION}\\Image File Execution Options"
        root = view.open_key(path)
        if root is None:
            continue

        def debugger(key: RegistryKey) -> None:
            command = _text(value_of(key, "Debugger")).strip()
            if command:
                out.registry("ifeo", mount, key.path, "Debugger", command,
                             windows_program(command, env))

        out.each(mount, view, path, root.subkeys(), debugger)


def _appinit(out: _Collector, mount: str, view: RegistryView, env: Mapping[str, str]) -> None:
    for wow in ("", "Wow6432Node\\"):
        key = view.open_key(f"{wow}{NT_CURRENT_VERSION}\\Windows")
        if key is None:
            continue
        values = {value.name.lower(): value.data for value in key.values()}
        dlls = _text(values.get("appinit_dlls")).strip()
        if not dlls:
            continue
        load = values.get("loadappinit_dlls")
        note = f" (LoadAppInit_DLLs={_text(load) if load is not None else 'absent'})"
        first = re.split(r"[,\s]+", dlls)[0]
        out.registry("appinit", mount, key.path, "AppInit_DLLs", dlls,
                     normalize_path(expand(first, env)), note)


def _user_windows_load(out: _Collector, mount: str, view: RegistryView,
                       env: Mapping[str, str]) -> None:
    key = view.open_key(f"Software\\{NT_CURRENT_VERSION}\\Windows")
    if key is None:
        return
    for value in key.values():
        if value.name.lower() in ("load", "run"):
            command = _text(value.data).strip()
            if command:
                out.registry("registry-run", mount, key.path, value.name, command,
                             windows_program(command, env))


def current_control_set(view: RegistryView) -> str:
    """``CurrentControlSet`` on a live system, else the set ``Select\\Current`` names."""
    if view.open_key("CurrentControlSet") is not None:
        return "CurrentControlSet"
    select = view.open_key("Select")
    current = value_of(select, "Current") if select is not None else None
    if isinstance(current, int) and 0 < current < 1000:
        return f"ControlSet{current:03d}"
    return "ControlSet001"


def _services(out: _Collector, mount: str, view: RegistryView) -> None:
    control_set = current_control_set(view)
    path = f"{control_set}\\Services"
    services = view.open_key(path)
    if services is None:
        out.errors.append(f"{view.source}: {mount}\\{path}: no such key; services not listed")
        return

    def service(key: RegistryKey) -> None:
        values = {value.name.lower(): value.data for value in key.values()}
        start = values.get("start")
        if not isinstance(start, int) or start not in AUTOSTART_TYPES:
            return
        image = _text(values.get("imagepath")).strip()
        kind = values.get("type")
        program = windows_program(image) if image else None
        if not image and isinstance(kind, int) and kind & 0x3:  # a driver without ImagePath
            program = f"C:\\Windows\\System32\\drivers\\{key.name}.sys"
        if program and PureWindowsPath(program).name.lower() in ("svchost.exe", "svchost"):
            program = _service_dll(key, values) or program
        note = f" (start: {AUTOSTART_TYPES[start]})"
        out.registry("service", mount, key.path, "ImagePath" if image else "", image, program,
                     note, key_entry=True)

    out.each(mount, view, path, services.subkeys(), service)


def _service_dll(key: RegistryKey, values: Mapping[str, RegData]) -> str | None:
    """The DLL a shared svchost service really runs (``Parameters\\ServiceDll``)."""
    dll = _text(values.get("servicedll")).strip()
    if not dll:
        parameters = key.subkey("Parameters")
        if parameters is not None:
            dll = _text(value_of(parameters, "ServiceDll")).strip()
    return normalize_path(expand(dll, _SYSTEM_ENV)) if dll else None


# -- file-system checks -----------------------------------------------------------------------

def _windows_path(root: Path, real: Path) -> str:
    """``real`` (under the offline root) as the drive path Windows knows it by."""
    try:
        return "C:\\" + "\\".join(real.relative_to(root).parts)
    except ValueError:
        return str(real)


def _local_name(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def task_actions(data: bytes) -> tuple[list[tuple[str, str]], bool]:
    """The (command, arguments) of each Exec action of a Task XML, and whether it is
    enabled. Raises ValueError when the XML is malformed or forbidden (entities, DTDs)."""
    try:
        root = fromstring(data)
    except (ParseError, DefusedXmlException) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from exc
    actions: list[tuple[str, str]] = []
    enabled = True
    for element in root.iter():
        name = _local_name(element.tag)
        if name == "Exec":
            fields = {_local_name(child.tag): (child.text or "").strip() for child in element}
            if fields.get("Command"):
                actions.append((fields["Command"], fields.get("Arguments", "")))
        elif name == "Settings":
            for child in element:
                if _local_name(child.tag) == "Enabled" and (child.text or "").strip() == "false":
                    enabled = False
    return actions, enabled


def _tasks(out: _Collector, root: Path) -> None:
    folder = windows_in_root(root, TASKS_DIR)
    if folder is None or not folder.is_dir():
        return
    walk_errors: list[OSError] = []
    for current, dirs, files in os.walk(folder, onerror=walk_errors.append):
        dirs.sort()
        for name in sorted(files):
            real = Path(current) / name
            shown = _windows_path(root, real)
            if real.is_symlink():  # never on NTFS: on a mounted image it may lead out
                out.errors.append(f"{real}: a symbolic link, not followed")
                continue
            try:
                with real.open("rb") as handle:
                    data = handle.read(MAX_TASK_BYTES + 1)
            except OSError as exc:
                out.errors.append(f"{real}: cannot read task: {exc.strerror or exc}")
                continue
            if len(data) > MAX_TASK_BYTES:
                out.errors.append(f"{real}: task file larger than 1 MiB, not read")
                continue
            try:
                actions, enabled = task_actions(data)
            except ValueError as exc:
                out.errors.append(f"{real}: not a valid task XML, skipped ({exc})")
                continue
            note = "" if enabled else " (disabled)"
            for command, arguments in actions:
                line = f"{command} {arguments}".strip()
                program = windows_program(f"{_quote(command)} {arguments}")
                out.entries.append(PersistenceEntry(
                    system="windows", location="scheduled-task", where=shown + note,
                    command=line, program=program, file=str(real), whole_file=True))
    out.errors.extend(f"{exc.filename}: cannot list: {exc.strerror or exc}"
                      for exc in walk_errors)


def _quote(command: str) -> str:
    """A task's Command field is a path by itself: quote it so spaces stay in it."""
    return command if command.startswith('"') else f'"{command}"'


def lnk_target(data: bytes) -> tuple[str | None, str]:
    """(target path, arguments) of a Windows shortcut (MS-SHLLINK), best effort.

    Reads the LinkInfo local path, else the environment-variable target block;
    arguments come from the string data. Anything malformed yields (None, "").
    """
    try:
        if len(data) < 0x4C or data[:4] != b"\x4c\x00\x00\x00":
            return None, ""
        (flags,) = struct.unpack_from("<I", data, 0x14)
        pos = 0x4C
        if flags & 0x01:  # HasLinkTargetIDList
            (size,) = struct.unpack_from("<H", data, pos)
            pos += 2 + size
        target: str | None = None
        if flags & 0x02:  # HasLinkInfo
            info_size, header_size, info_flags = struct.unpack_from("<III", data, pos)
            if info_flags & 0x01:
                local_offset, _, suffix_offset = struct.unpack_from("<III", data, pos + 16)
                target = _cstring(data, pos + local_offset)
                if header_size >= 0x24:
                    (unicode_offset,) = struct.unpack_from("<I", data, pos + 28)
                    target = _wstring(data, pos + unicode_offset) or target
                suffix = _cstring(data, pos + suffix_offset)
                if target and suffix:
                    target = target.rstrip("\\") + "\\" + suffix
            pos += info_size
        unicode = bool(flags & 0x80)
        strings: dict[int, str] = {}
        for bit in (0x04, 0x08, 0x10, 0x20, 0x40):
            if flags & bit:
                (count,) = struct.unpack_from("<H", data, pos)
                pos += 2
                size = count * 2 if unicode else count
                raw = data[pos:pos + size]
                strings[bit] = raw.decode("utf-16-le" if unicode else "cp1252", errors="replace")
                pos += size
        while not target and pos + 8 <= len(data):  # extra data blocks
            size, signature = struct.unpack_from("<II", data, pos)
            if size < 8:
                break
            if signature == 0xA0000001 and size >= 0x314:  # EnvironmentVariableDataBlock
                target = _wstring(data, pos + 268) or _cstring(data, pos + 8)
            pos += size
        if not target:
            target = strings.get(0x08)  # a relative path is better than nothing
        return target or None, strings.get(0x20, "")
    except struct.error:
        return None, ""


def _cstring(data: bytes, at: int) -> str:
    end = data.find(b"\x00", at)
    return data[at:end if end >= 0 else len(data)].decode("cp1252", errors="replace")


def _wstring(data: bytes, at: int) -> str:
    end = at
    while end + 1 < len(data) and data[end:end + 2] != b"\x00\x00":
        end += 2
    return data[at:end].decode("utf-16-le", errors="replace")


def _startup_folders(root: Path) -> list[Path]:
    folders = []
    common = windows_in_root(root, COMMON_STARTUP)
    if common is not None:
        folders.append(common)
    users = windows_in_root(root, "C:\\Users")
    if users is not None and users.is_dir():
        for user in sorted(users.iterdir()):
            folder = windows_in_root(root, f"C:\\Users\\{user.name}\\{USER_STARTUP}")
            if folder is not None:
                folders.append(folder)
    return folders


def _startup(out: _Collector, root: Path) -> None:
    for folder in _startup_folders(root):
        try:
            items = sorted(folder.iterdir())
        except OSError as exc:
            out.errors.append(f"{folder}: cannot list: {exc.strerror or exc}")
            continue
        for item in items:
            if item.name.lower() == "desktop.ini" or item.is_symlink() or not item.is_file():
                continue
            shown = _windows_path(root, item)
            command, program = shown, shown
            if item.suffix.lower() == ".lnk":
                try:
                    target, arguments = lnk_target(item.read_bytes()[:1 << 20])
                except OSError as exc:
                    out.errors.append(f"{item}: cannot read shortcut: {exc.strerror or exc}")
                    target, arguments = None, ""
                if target:
                    program = normalize_path(expand(target, _SYSTEM_ENV))
                    command = f'"{target}" {arguments}'.strip()
            out.entries.append(PersistenceEntry(
                system="windows", location="startup-folder", where=shown, command=command,
                program=program, file=str(item), whole_file=True))


# -- hives: finding and identifying them ----------------------------------------------------

def _hive_kind(view: HiveRegistry, file_name: str) -> tuple[str, str] | None:
    """("system" | "software" | "ntuser", prefix) from the root key's contents, then from
    the name stored in the hive header and the file name."""
    names = {name.lower() for name in view.root_subkey_names()}
    root = view.root_name.lower()
    if "select" in names and any(n.startswith("controlset") for n in names):
        return "system", ""
    if "software" in names and names & {"control panel", "environment", "appevents",
                                        "console", "keyboard layout"}:
        return "ntuser", ""
    hints = f"{view.header_name} {file_name}".lower()
    if root == "software":  # an exported key: HKCU\Software or HKLM\SOFTWARE itself
        if "appdatalow" in names or "ntuser" in hints:
            return "ntuser", "Software"
        return "software", ""
    if "microsoft" in names and names & {"classes", "clients", "policies", "wow6432node"}:
        return "software", ""
    if "ntuser" in hints:
        return "ntuser", ""
    if re.search(r"(?:^|\\)system$", view.header_name.lower()) or file_name.lower() == "system":
        return "system", ""
    if re.search(r"\\software$", view.header_name.lower()) or file_name.lower() == "software":
        return "software", ""
    return None


def _user_name(view: HiveRegistry, path: Path) -> str:
    match = re.search(r"\\Users\\([^\\]+)\\", view.header_name, re.IGNORECASE)
    if match:
        return match.group(1)
    if path.name.lower() == "ntuser.dat" and path.parent.name:
        return path.parent.name
    return path.stem


def hive_view(path: Path) -> tuple[str, HiveRegistry]:
    """Open one hive file (``--hive FILE``) and tell where it mounts, so the right checks
    run on it: ``HKLM\\SYSTEM``, ``HKLM\\SOFTWARE`` or ``HKU\\<user>``.

    Raises `RegistryError` when the file cannot be read, is not a hive, or is a hive
    no persistence check applies to (SAM, SECURITY, UsrClass.dat, Amcache...).
    """
    view = HiveRegistry(path)
    try:
        kind = _hive_kind(view, path.name)
    except RegistryError as exc:
        raise RegistryError(f"{exc} (while telling which hive it is)") from exc
    if kind is None:
        shown = ", ".join(sorted(view.root_subkey_names())[:8])
        raise RegistryError(
            f"{path}: not a SOFTWARE, SYSTEM or NTUSER.DAT hive (header name "
            f"{printable(view.header_name)!r}, root keys: {printable(shown)}); "
            f"no persistence check applies to it")
    hive, prefix = kind
    if prefix:
        view = HiveRegistry(path, prefix=prefix)
    if hive == "system":
        return "HKLM\\SYSTEM", view
    if hive == "software":
        return "HKLM\\SOFTWARE", view
    return f"HKU\\{_user_name(view, path)}", view


def offline_views(offline_root: Path) -> tuple[dict[str, RegistryView], list[str]]:
    """The SOFTWARE, SYSTEM and users' NTUSER.DAT hives of a mounted Windows volume.

    A hive that cannot be opened is an error in the list; the others are still returned.
    """
    views: dict[str, RegistryView] = {}
    errors: list[str] = []
    config = windows_in_root(offline_root, "C:\\Windows\\System32\\config")
    if config is None:
        errors.append(f"{offline_root}: no Windows\\System32\\config folder; "
                      f"not a Windows system volume?")
    else:
        for name in ("SOFTWARE", "SYSTEM"):
            hive = windows_in_root(offline_root, f"C:\\Windows\\System32\\config\\{name}")
            if hive is None:
                errors.append(f"{config}: no {name} hive")
                continue
            try:
                views[f"HKLM\\{name}"] = HiveRegistry(hive)
            except RegistryError as exc:
                errors.append(str(exc))
    users = windows_in_root(offline_root, "C:\\Users")
    if users is not None and users.is_dir():
        for user in sorted(users.iterdir()):
            hive = windows_in_root(offline_root, f"C:\\Users\\{user.name}\\NTUSER.DAT")
            if hive is None or not hive.is_file():
                continue
            try:
                views[f"HKU\\{user.name}"] = HiveRegistry(hive)
            except RegistryError as exc:
                errors.append(str(exc))
    return views, errors


# -- all together ------------------------------------------------------------------------------

def windows_entries(views: Mapping[str, RegistryView], offline_root: Path | None = None
                    ) -> tuple[list[PersistenceEntry], list[str]]:
    """Every autostart entry in ``views`` (and, with ``offline_root``, in its scheduled
    tasks and Startup folders), and the errors met. A damaged hive costs only what is
    damaged: each check and each damaged key is one error, the rest is still listed."""
    out = _Collector()
    for mount, view in views.items():
        upper = mount.upper()
        checks: list[Callable[[], None]]
        if upper == "HKLM\\SOFTWARE":
            checks = [
                partial(_run_keys, out, mount, view, "", _SYSTEM_ENV),
                partial(_winlogon, out, mount, view, "", _SYSTEM_ENV, ("shell", "userinit")),
                partial(_ifeo, out, mount, view, _SYSTEM_ENV),
                partial(_appinit, out, mount, view, _SYSTEM_ENV),
            ]
        elif upper == "HKLM\\SYSTEM":
            checks = [partial(_services, out, mount, view)]
        elif upper.startswith(("HKU\\", "HKCU")):
            env = environment(_user_of(mount))
            checks = [
                partial(_run_keys, out, mount, view, "Software\\", env),
                partial(_winlogon, out, mount, view, "Software\\", env, ("shell",)),
                partial(_user_windows_load, out, mount, view, env),
            ]
        else:
            out.errors.append(f"{view.source}: mounted as {mount}, which no persistence "
                              f"check reads (expected HKLM\\SOFTWARE, HKLM\\SYSTEM, HKU\\<user>)")
            continue
        for check in checks:
            try:
                check()
            except RegistryError as exc:
                out.errors.append(str(exc))
    if offline_root is not None:
        _tasks(out, offline_root)
        _startup(out, offline_root)
    return out.entries, out.errors
