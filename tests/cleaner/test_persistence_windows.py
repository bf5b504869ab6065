"""Persistence checks on Windows: the real hives of the corpus (regipy's test data), a
fake offline volume with tasks and Startup items, and a recorded SOFTWARE hive."""

from __future__ import annotations

import hashlib
import lzma
import shutil
import struct
import time
from pathlib import Path

import pytest
from regipy.registry import RegistryHive

from cleancenter.cleaner.definitions import Definitions, HashEntry, IocSet
from cleancenter.cleaner.persistence import (
    HiveRegistry,
    LiveRegistry,
    PersistenceEntry,
    RegistryError,
    hive_view,
    offline_views,
    root_reader,
    windows_entries,
)
from cleancenter.cleaner.persistence.judge import judge
from cleancenter.cleaner.persistence.registry import RegData, RegistryKey, RegValue
from cleancenter.cleaner.persistence.windows import lnk_target, task_actions, windows_program
from cleancenter.definitions.behaviour import behaviour_rules

RUN = "Software\\Microsoft\\Windows\\CurrentVersion\\Run"
# measured once on the corpus hives: services with Start 0, 1 or 2 in ControlSet001
SYSTEM_AUTOSTART = {"boot": 36, "system": 28, "automatic": 61}  # of 467 service keys
WIN10_AUTOSTART = 206  # of 737


@pytest.fixture(scope="module")
def hives(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus hives, decompressed once for this module."""
    folder = tmp_path_factory.mktemp("hives")
    for packed in sorted((corpus / "hives").glob("*.xz")):
        (folder / packed.stem).write_bytes(lzma.decompress(packed.read_bytes()))
    return folder


def test_ntuser_run_entry(hives: Path) -> None:
    started = time.perf_counter()
    mount, view = hive_view(hives / "NTUSER.DAT")
    entries, errors = windows_entries({mount: view})
    assert time.perf_counter() - started < 2
    assert mount == "HKU\\vibranium"  # from the path stored in the hive's header
    assert errors == []
    assert entries == [PersistenceEntry(
        system="windows", location="registry-run",
        where=f"HKU\\vibranium\\{RUN}\\Sidebar",
        command="%ProgramFiles%\\Windows Sidebar\\Sidebar.exe /autoRun",
        program="C:\\Program Files\\Windows Sidebar\\Sidebar.exe",
        registry={"hive": "HKU\\vibranium", "key": RUN, "value": "Sidebar"})]


def test_modified_ntuser_and_partial_software_hive(hives: Path) -> None:
    mount, view = hive_view(hives / "NTUSER_modified.DAT")
    entries, _ = windows_entries({mount: view})
    assert [(e.where.rsplit("\\", 1)[1], e.command) for e in entries] == [
        ("Sidebar", "%ProgramFiles%\\Windows Sidebar\\Sidebar.exe /autoRun"),
        ("not_a_malware", "c:\\temp\\legitimate_binary.exe")]
    # an export of HKCU\Software alone: mounted as a user hive, paths as in NTUSER.DAT
    mount, view = hive_view(hives / "ntuser_software_partial")
    assert mount == "HKU\\ntuser_software_partial"
    entries, errors = windows_entries({mount: view})
    assert errors == []
    onedrive = entries[0]
    assert onedrive.where == f"{mount}\\{RUN}\\OneDrive"
    assert onedrive.program == "C:\\Users\\tony\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe"
    assert [e.location for e in entries] == ["registry-run"] + ["registry-runonce"] * 4
    assert entries[1].program == "C:\\WINDOWS\\system32\\cmd.exe"  # "cmd /c del" runs only cmd


def test_system_hive_services(hives: Path) -> None:
    started = time.perf_counter()
    mount, view = hive_view(hives / "SYSTEM")
    entries, errors = windows_entries({mount: view})
    assert time.perf_counter() - started < 5
    assert mount == "HKLM\\SYSTEM" and errors == []
    services = view.open_key("ControlSet001\\Services")
    assert services is not None and len(services.subkeys()) == 467
    assert all(e.location == "service" for e in entries)
    counts = {kind: sum(e.where.endswith(f"(start: {kind})") for e in entries)
              for kind in SYSTEM_AUTOSTART}
    assert counts == SYSTEM_AUTOSTART
    found = {e.registry["key"].rsplit("\\", 1)[1]: e for e in entries if e.registry}
    afd = found["AFD"]
    assert (afd.where, afd.command, afd.program) == (
        "HKLM\\SYSTEM\\ControlSet001\\services\\AFD (start: system)",
        "\\SystemRoot\\system32\\drivers\\afd.sys", "C:\\Windows\\system32\\drivers\\afd.sys")
    assert afd.registry == {"hive": "HKLM\\SYSTEM", "key": "ControlSet001\\services\\AFD",
                            "value": "ImagePath"}
    crypt = found["CryptSvc"]  # a shared svchost service: its program is its ServiceDll
    assert crypt.command == "%SystemRoot%\\system32\\svchost.exe -k NetworkService"
    assert crypt.program == "C:\\Windows\\system32\\cryptsvc.dll"
    assert found["VMTools"].program == \
        "C:\\Program Files\\VMware\\VMware Tools\\VMwareService.exe"
    assert (found["Beep"].command, found["Beep"].program) == \
        ("", "C:\\Windows\\System32\\drivers\\Beep.sys")  # a driver without ImagePath
    assert found["Spooler"].where.endswith("(start: automatic)")


def test_windows_10_system_hive(hives: Path) -> None:
    mount, view = hive_view(hives / "SYSTEM_WIN_10_1709")
    entries, errors = windows_entries({mount: view})
    assert errors == [] and len(entries) == WIN10_AUTOSTART


def test_corrupted_hive_is_an_error_and_the_other_hives_are_scanned(hives: Path) -> None:
    views = dict([hive_view(hives / "corrupted_system_hive"), hive_view(hives / "NTUSER.DAT")])
    entries, errors = windows_entries(views)
    assert len(errors) == 1
    message = errors[0]
    assert message.startswith(f"{hives / 'corrupted_system_hive'}: 37 of 258 keys under "
                              "HKLM\\SYSTEM\\ControlSet001\\Services could not be read")
    assert "the hive is damaged" in message and "lies outside the 3444736-byte file" in message
    assert message.isprintable()  # the damaged key names are binary garbage
    assert sum(e.location == "service" for e in entries) == 72  # what is intact is listed
    assert any(e.where.endswith("\\Run\\Sidebar") for e in entries)


def test_unreadable_and_foreign_hives(hives: Path, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"no such file|cannot read"):
        hive_view(tmp_path / "missing")
    junk = tmp_path / "SOFTWARE"
    junk.write_bytes(b"MZ not a hive at all" * 10)
    with pytest.raises(RegistryError, match=r"SOFTWARE: not a registry hive \(no 'regf'"):
        hive_view(junk)
    cut = tmp_path / "cut"
    cut.write_bytes((hives / "NTUSER.DAT").read_bytes()[:4100])
    with pytest.raises(RegistryError, match="cut: the hive is damaged, its header or root key"):
        hive_view(cut)
    with pytest.raises(RegistryError, match=r"not a SOFTWARE, SYSTEM or NTUSER\.DAT hive"):
        hive_view(hives / "SAM")
    with pytest.raises(RegistryError, match=r"UsrClass\.dat: not a SOFTWARE"):
        hive_view(hives / "UsrClass.dat")


def test_hive_values_match_regipy(hives: Path) -> None:
    """The hive view decodes values itself (fast); it must agree with regipy's own."""
    path = hives / "NTUSER.DAT"
    hive = RegistryHive(str(path))  # type: ignore[no-untyped-call,unused-ignore]
    view = HiveRegistry(path)
    compared = 0

    def walk(record: object, key: RegistryKey) -> None:
        nonlocal compared
        theirs = [("" if v.name == "(default)" else v.name, v.value)
                  for v in record.iter_values(trim_values=False)]  # type: ignore[attr-defined]
        assert [(v.name, v.data) for v in key.values()] == theirs, key.path
        compared += len(theirs)
        children = {child.name: child for child in key.subkeys()}
        if record.subkey_count:  # type: ignore[attr-defined]
            for sub in record.iter_subkeys():  # type: ignore[attr-defined]
                walk(sub, children[sub.name])

    root = view.open_key("")
    assert root is not None
    walk(hive.root, root)
    assert compared > 4000


def test_live_registry_only_on_windows() -> None:
    with pytest.raises(RegistryError, match="only on Windows"):
        LiveRegistry("HKEY_LOCAL_MACHINE", "SOFTWARE").open_key("Microsoft")


# -- an offline volume ------------------------------------------------------------------------

TASK_XML = """<?xml version="1.0" encoding="UTF-16"?>
<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">
  <Settings><Enabled>true</Enabled></Settings>
  <Actions Context="Author">
    <Exec>
      <Command>C:\\Users\\Public\\Libraries\\updater.exe</Command>
      <Arguments>-silent -k 7</Arguments>
    </Exec>
    <Exec><Command>%windir%\\system32\\rundll32.exe</Command>
      <Arguments>C:\\ProgramData\\x\\hook.dll,Run</Arguments></Exec>
  </Actions>
</Task>
"""
BOMB_XML = """<?xml version="1.0"?>
<!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<Task><Actions><Exec><Command>&b;</Command></Exec></Actions></Task>
"""
BOT_BYTES = b"MZ harmless stand-in registered by the test as a known bot"


def make_lnk(target: str, arguments: str) -> bytes:
    """A minimal shortcut (MS-SHLLINK): header, LinkInfo with a local path, arguments."""
    local = target.encode("cp1252") + b"\0"
    info_header = 0x1C
    info = struct.pack("<IIIIIII", info_header + len(local) + 1, info_header, 1, 0,
                       info_header, 0, info_header + len(local)) + local + b"\0"
    flags = 0x02 | 0x20 | 0x80  # HasLinkInfo, HasArguments, IsUnicode
    header = struct.pack("<I16sI", 0x4C, b"\x01\x14\x02\0\0\0\0\0\xc0\0\0\0\0\0\0\x46", flags)
    header = header.ljust(0x4C, b"\0")
    args = struct.pack("<H", len(arguments)) + arguments.encode("utf-16-le")
    return header + info + args + b"\0\0\0\0"


@pytest.fixture
def volume(hives: Path, tmp_path: Path) -> Path:
    root = tmp_path / "C"
    config = root / "Windows/System32/config"
    config.mkdir(parents=True)
    shutil.copy(hives / "SYSTEM", config / "SYSTEM")
    (config / "SOFTWARE").write_bytes(b"regf" + b"\0" * 60)  # damaged beyond opening
    user = root / "Users/vibranium"
    user.mkdir(parents=True)
    shutil.copy(hives / "NTUSER.DAT", user / "NTUSER.DAT")
    tasks = root / "Windows/System32/Tasks"
    (tasks / "Microsoft/Windows").mkdir(parents=True)
    (tasks / "Updater").write_bytes(TASK_XML.encode("utf-16"))  # with a BOM, as Windows
    (tasks / "Microsoft/Windows/Broken").write_text("<Task><Actions><Exec>")
    (tasks / "Bomb").write_text(BOMB_XML)
    common = root / "ProgramData/Microsoft/Windows/Start Menu/Programs/Startup"  # any case
    common.mkdir(parents=True)
    (common / "svcupd.exe").write_bytes(BOT_BYTES)
    (common / "desktop.ini").write_text("[.ShellClassInfo]\n")
    startup = user / "AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup"
    startup.mkdir(parents=True)
    (startup / "helper.lnk").write_bytes(make_lnk(
        "C:\\Users\\vibranium\\AppData\\Local\\Temp\\helper.exe", "--hidden"))
    return root


def test_offline_volume(volume: Path) -> None:
    views, errors = offline_views(volume)
    assert sorted(views) == ["HKLM\\SYSTEM", "HKU\\vibranium"]
    assert len(errors) == 1
    assert errors[0].startswith(f"{volume}/Windows/System32/config/SOFTWARE: the hive is "
                                "damaged")
    entries, errors = windows_entries(views, offline_root=volume)
    assert sum(e.location == "service" for e in entries) == sum(SYSTEM_AUTOSTART.values())
    assert any(e.where == f"HKU\\vibranium\\{RUN}\\Sidebar" for e in entries)

    tasks = [e for e in entries if e.location == "scheduled-task"]
    assert [(t.where, t.command, t.program) for t in tasks] == [
        ("C:\\Windows\\System32\\Tasks\\Updater",
         "C:\\Users\\Public\\Libraries\\updater.exe -silent -k 7",
         "C:\\Users\\Public\\Libraries\\updater.exe"),
        ("C:\\Windows\\System32\\Tasks\\Updater",
         "%windir%\\system32\\rundll32.exe C:\\ProgramData\\x\\hook.dll,Run",
         "C:\\ProgramData\\x\\hook.dll")]
    assert tasks[0].whole_file and tasks[0].file == str(volume / "Windows/System32/Tasks/Updater")
    assert len(errors) == 2
    assert errors[0].startswith(f"{volume}/Windows/System32/Tasks/Bomb: not a valid task XML")
    assert errors[1].startswith(
        f"{volume}/Windows/System32/Tasks/Microsoft/Windows/Broken: not a valid task XML")

    startup = {e.where: e for e in entries if e.location == "startup-folder"}
    common = "C:\\ProgramData\\Microsoft\\Windows\\Start Menu\\Programs\\Startup\\svcupd.exe"
    assert sorted(startup) == [
        common,
        "C:\\Users\\vibranium\\AppData\\Roaming\\Microsoft\\Windows\\Start Menu\\Programs\\"
        "Startup\\helper.lnk"]
    assert startup[common].program == common and startup[common].whole_file
    helper = next(e for e in startup.values() if e.where.endswith("helper.lnk"))
    assert helper.program == "C:\\Users\\vibranium\\AppData\\Local\\Temp\\helper.exe"
    assert helper.command == '"C:\\Users\\vibranium\\AppData\\Local\\Temp\\helper.exe" --hidden'

    known = hashlib.sha256(BOT_BYTES).hexdigest()
    defs = Definitions(version=1, created="", source="defs.ccdef", bundle_sha256="",
                       manifest={}, hashes={known: HashEntry(known, None, "Startbot")},
                       behaviour=behaviour_rules())
    rated = {f.where: f for f in judge(entries, defs, root_reader(volume))}
    assert rated[common].severity == "malicious"
    assert rated[common].evidence[0].type == "hash"
    assert rated[common].evidence[0].detail == "Startbot"
    assert rated[helper.where].severity == "suspicious"
    assert rated[f"HKU\\vibranium\\{RUN}\\Sidebar"].severity == "info"


def test_task_and_lnk_parsers() -> None:
    assert task_actions(TASK_XML.encode("utf-16"))[1] is True
    disabled = TASK_XML.replace("<Enabled>true", "<Enabled>false")
    assert task_actions(disabled.encode("utf-16"))[1] is False
    with pytest.raises(ValueError):
        task_actions(BOMB_XML.encode())
    assert lnk_target(make_lnk("C:\\a\\b.exe", "-x")) == ("C:\\a\\b.exe", "-x")
    assert lnk_target(b"\x4c\0\0\0" + b"\xff" * 10) == (None, "")
    assert lnk_target(make_lnk("C:\\a\\b.exe", "-x")[:0x50]) == (None, "")


@pytest.mark.parametrize(("command", "program"), [
    ('"C:\\Program Files\\A B\\c.exe" /x', "C:\\Program Files\\A B\\c.exe"),
    ("C:\\Program Files\\A B\\c.exe -x", "C:\\Program Files\\A B\\c.exe"),
    ("%TEMP%\\b.exe", "C:\\Windows\\Temp\\b.exe"),
    ("rundll32.exe C:\\x\\y.dll,Start", "C:\\x\\y.dll"),
    ("regsvr32 /s /i:http://x scrobj.dll", "scrobj.dll"),
    ('cmd.exe /c start "" "C:\\Users\\a\\AppData\\Local\\Temp\\x.exe" -q',
     "C:\\Users\\a\\AppData\\Local\\Temp\\x.exe"),
    ("\\SystemRoot\\System32\\drivers\\x.sys", "C:\\Windows\\System32\\drivers\\x.sys"),
    ("\\??\\C:\\Windows\\x.sys", "C:\\Windows\\x.sys"),
    ("", None),
])
def test_windows_program(command: str, program: str | None) -> None:
    assert windows_program(command) == program


# -- a recorded SOFTWARE hive (the corpus has none) -----------------------------------------

class RecordedKey:
    def __init__(self, view: RecordedView, path: str) -> None:
        self._view = view
        self.path = path
        self.name = path.rsplit("\\", 1)[-1]

    def values(self) -> list[RegValue]:
        data = self._view.keys[self.path.lower()]
        return [RegValue(name, "REG_DWORD" if isinstance(value, int) else "REG_SZ", value)
                for name, value in data.items()]

    def subkeys(self) -> list[RegistryKey]:
        prefix = self.path.lower() + "\\"
        names = {key[len(prefix):].split("\\", 1)[0] for key in self._view.keys
                 if key.startswith(prefix)}
        return [RecordedKey(self._view, f"{self.path}\\{name}") for name in sorted(names)]

    def subkey(self, name: str) -> RegistryKey | None:
        return self._view.open_key(f"{self.path}\\{name}")


class RecordedView:
    """A snapshot backend: key path -> values; parent keys exist implicitly."""

    source = "recorded SOFTWARE"

    def __init__(self, keys: dict[str, dict[str, RegData]]) -> None:
        self.keys: dict[str, dict[str, RegData]] = {}
        for path, values in keys.items():
            parts = path.split("\\")
            for end in range(1, len(parts)):
                self.keys.setdefault("\\".join(parts[:end]).lower(), {})
            self.keys[path.lower()] = values

    def open_key(self, path: str) -> RegistryKey | None:
        return RecordedKey(self, path) if path.lower() in self.keys else None


NT = "Microsoft\\Windows NT\\CurrentVersion"
SOFTWARE: dict[str, dict[str, RegData]] = {
    "Microsoft\\Windows\\CurrentVersion\\Run": {
        "Updater": "C:\\Users\\bob\\AppData\\Local\\Temp\\upd.exe -q",
        "Vendor": '"C:\\Program Files\\Vendor\\tray.exe" /min'},
    "Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\RunOnce": {
        "x": "C:\\Windows\\svch0st.exe"},
    f"{NT}\\Winlogon": {"Shell": "explorer.exe",
                        "Userinit": "C:\\Windows\\system32\\userinit.exe,C:\\Windows\\mssys.exe,"},
    f"{NT}\\Image File Execution Options\\sethc.exe": {
        "Debugger": "C:\\Windows\\System32\\cmd.exe"},
    f"{NT}\\Image File Execution Options\\notepad.exe": {"GlobalFlag": 0},
    f"{NT}\\Windows": {"AppInit_DLLs": "C:\\Users\\Public\\hook.dll", "LoadAppInit_DLLs": 1},
}


def test_software_checks_and_judge() -> None:
    entries, errors = windows_entries({"HKLM\\SOFTWARE": RecordedView(SOFTWARE)})
    assert errors == []
    found = {e.where: e for e in entries}
    run = "HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run"
    assert sorted(found) == sorted([
        f"{run}\\Updater", f"{run}\\Vendor",
        "HKLM\\SOFTWARE\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\RunOnce\\x",
        f"HKLM\\SOFTWARE\\{NT}\\Winlogon\\Userinit",  # Shell is the default: not listed
        f"HKLM\\SOFTWARE\\{NT}\\Image File Execution Options\\sethc.exe\\Debugger",
        f"HKLM\\SOFTWARE\\{NT}\\Windows\\AppInit_DLLs (LoadAppInit_DLLs=1)"])
    assert found[f"HKLM\\SOFTWARE\\{NT}\\Winlogon\\Userinit"].program == "C:\\Windows\\mssys.exe"
    assert found[f"{run}\\Vendor"].program == "C:\\Program Files\\Vendor\\tray.exe"

    defs = Definitions(version=1, created="", source="defs.ccdef", bundle_sha256="",
                       manifest={}, iocs=IocSet.from_lists({"filenames": ["SVCH0ST.EXE"]}),
                       behaviour=behaviour_rules())
    rated = {f.where: f for f in judge(entries, defs)}
    temp = rated[f"{run}\\Updater"]
    assert (temp.severity, temp.kind) == ("suspicious", "suspicious-autostart")
    assert {(e.type, e.value, e.detail) for e in temp.evidence} == {
        ("behaviour", "starts a program from a user-writable folder",
         behaviour_rules()["persistence_patterns"][3]["pattern"]),
        ("behaviour", "its program lives in a folder programs are not installed to",
         "\\AppData\\Local\\Temp\\")}
    assert temp.target["entry"]["registry"] == {
        "hive": "HKLM\\SOFTWARE", "key": "Microsoft\\Windows\\CurrentVersion\\Run",
        "value": "Updater"}
    ioc = rated["HKLM\\SOFTWARE\\Wow6432Node\\Microsoft\\Windows\\CurrentVersion\\RunOnce\\x"]
    assert (ioc.severity, ioc.kind) == ("suspicious", "suspicious-autostart")  # name only
    assert ("ioc", "svch0st.exe", "defs.ccdef") in {
        (e.type, e.value, e.source) for e in ioc.evidence}
    assert rated[f"{run}\\Vendor"].severity == "info"
    assert rated[f"HKLM\\SOFTWARE\\{NT}\\Windows\\AppInit_DLLs (LoadAppInit_DLLs=1)"] \
        .severity == "suspicious"  # C:\Users\Public\


def test_unknown_mount_is_an_error() -> None:
    entries, errors = windows_entries({"HKLM\\SAM": RecordedView({})})
    assert entries == [] and errors == [
        "recorded SOFTWARE: mounted as HKLM\\SAM, which no persistence check reads "
        "(expected HKLM\\SOFTWARE, HKLM\\SYSTEM, HKU\\<user>)"]
