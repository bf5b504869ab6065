"""Catalog writes and queries, on SQLite and on the real PostgreSQL server."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select

from cleancenter.center import Center
from cleancenter.collect.records import record_uid
from cleancenter.store.blobs import digest_bytes
from cleancenter.store.catalog import (
    EVENT,
    RELATION,
    SAMPLE_NAME,
    CatalogError,
    NewSample,
)
from cleancenter.store.ipkey import ip_key, network_key_range
from cleancenter.store.queries import (
    AmbiguousReference,
    EventFilter,
    SampleFilter,
    count_events,
    find_events,
    find_samples,
    get_sample,
)

T0 = datetime(2018, 5, 6, 12, 0, tzinfo=UTC)


def new_sample(data: bytes, seen: datetime, names: tuple[str, ...] = (), tags: tuple[str, ...] = (),
               file_type: str = "data") -> NewSample:
    d = digest_bytes(data)
    return NewSample(d.sha256, d.md5, d.sha1, d.size, file_type, seen, names, tags)


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from cleancenter.store.catalog import MIGRATIONS_DIR

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


HEAD = _head()


def test_schema_is_migrated_to_head(center: Center) -> None:
    assert center.catalog.schema_revision() == HEAD
    tables = set(inspect(center.catalog.engine).get_table_names())
    assert {"sample", "sample_name", "sample_tag", "relation", "event", "ingest_cursor",
            "ingest_error", "report", "ioc", "sample_ioc", "analyst_label", "release",
            "alembic_version"} <= tables
    assert HEAD >= "0003"
    center.catalog.migrate()  # a second time is a no-op
    assert center.catalog.schema_revision() == HEAD


def test_migrations_go_down_and_up_again(center: Center) -> None:
    from alembic import command

    cfg = center.catalog._alembic_config()
    with center.catalog.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert center.catalog.schema_revision() == "0001"
    assert "report" not in inspect(center.catalog.engine).get_table_names()
    center.catalog.migrate()
    assert center.catalog.schema_revision() == HEAD


def test_add_samples_is_idempotent_and_widens_seen_times(center: Center) -> None:
    cat = center.catalog
    with cat.transaction() as conn:
        assert cat.add_samples(conn, [new_sample(b"a", T0, ("a.exe",), ("x",))]) == 1
    with cat.transaction() as conn:
        assert cat.add_samples(conn, [new_sample(b"a", T0 + timedelta(days=2), ("b.exe",))]) == 0
        assert cat.add_samples(conn, [new_sample(b"a", T0 - timedelta(days=1), ("a.exe",),
                                                  ("x", "y"))]) == 0
    with cat.engine.connect() as conn:
        detail = get_sample(conn, digest_bytes(b"a").sha256)
        assert detail is not None
        assert detail.first_seen == T0 - timedelta(days=1)
        assert detail.last_seen == T0 + timedelta(days=2)
        assert sorted(detail.names) == ["a.exe", "b.exe"]
        assert detail.tags == ["x", "y"]
        assert conn.execute(select(func.count()).select_from(SAMPLE_NAME)).scalar_one() == 2


def test_relations_are_unique(center: Center) -> None:
    cat = center.catalog
    a, b = digest_bytes(b"parent").sha256, digest_bytes(b"child").sha256
    with cat.transaction() as conn:
        cat.add_samples(conn, [new_sample(b"parent", T0), new_sample(b"child", T0)])
        cat.add_relations(conn, [(a, b, "extracted"), (a, b, "extracted")])
    with cat.transaction() as conn:
        cat.add_relations(conn, [(a, b, "extracted"), (a, b, "unpacked")])
    with cat.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(RELATION)).scalar_one() == 2
        child = get_sample(conn, b)
        assert child is not None
        assert sorted(r["kind"] for r in child.parents) == ["extracted", "unpacked"]


def event(n: int, ip: str, when: datetime, kind: str = "login", sensor: str = "s1",
          sample: str | None = None) -> tuple[object, ...]:
    return (record_uid("t", str(n)), when, "cowrie", sensor, f"sess{n}", ip, ip_key(ip), 4000 + n,
            "10.0.0.1", 22, "ssh", kind, f"cowrie.{kind}", None, sample, "{}")


def test_events_dedupe_and_filters(center: Center) -> None:
    cat = center.catalog
    rows = [
        event(1, "192.0.2.1", T0),
        event(2, "192.0.2.200", T0 + timedelta(hours=1), kind="download", sample="ab" * 32),
        event(3, "198.51.100.7", T0 + timedelta(days=1), sensor="s2"),
        event(4, "2001:db8::1", T0 + timedelta(days=2), kind="connect"),
        event(5, "2001:db8:1::5", T0 + timedelta(days=3)),
    ]
    with cat.transaction() as conn:
        assert cat.add_events(conn, rows) == 5
    with cat.transaction() as conn:
        assert cat.add_events(conn, rows[:2]) == 0

    def ids(**kw: object) -> list[int]:
        with cat.engine.connect() as conn:
            return [r["src_port"] - 4000 for r in find_events(conn, EventFilter(**kw))]

    assert ids() == [1, 2, 3, 4, 5]
    assert ids(ip="192.0.2.0/24") == [1, 2]
    assert ids(ip="192.0.2.128/25") == [2]
    assert ids(ip="198.51.100.7") == [3]
    assert ids(ip="2001:db8::/48") == [4]
    assert ids(ip="2001:db8::/32") == [4, 5]
    assert ids(since=T0 + timedelta(hours=1), until=T0 + timedelta(days=2)) == [2, 3]
    assert ids(since=T0 + timedelta(days=2)) == [4, 5]  # inclusive start, to the microsecond
    assert ids(sensor="s2") == [3]
    assert ids(kind="download") == [2]
    assert ids(sample="AB" * 32) == [2]
    with cat.engine.connect() as conn:
        assert count_events(conn, EventFilter(ip="0.0.0.0/0")) == 3
        first = find_events(conn, EventFilter(limit=1), with_raw=True)[0]
        assert first["time"] == T0 and first["time"].tzinfo is not None
        assert first["raw"] == "{}"
    with pytest.raises(CatalogError):
        ids(ip="not-an-ip")


def test_ipv4_and_ipv6_keys_sort_within_networks() -> None:
    lo, hi = network_key_range("10.0.0.0/8")
    assert lo <= (ip_key("10.255.1.2") or "") <= hi
    assert not lo <= (ip_key("11.0.0.0") or "") <= hi
    assert ip_key("::ffff:10.1.2.3") == ip_key("10.1.2.3")
    assert ip_key("bogus") is None


def test_sample_search_by_hash_name_tag_type_and_date(center: Center) -> None:
    cat = center.catalog
    samples = [
        new_sample(b"one", T0, ("spoolsvc.exe",), ("irc",), "pe32"),
        new_sample(b"two", T0 + timedelta(days=1), ("mirai.arm7",), ("mirai",), "elf32"),
        new_sample(b"three", T0 + timedelta(days=2), ("Bot_50%_off.exe",), ("irc",), "pe32"),
    ]
    with cat.transaction() as conn:
        cat.add_samples(conn, samples)

    def shas(**kw: object) -> list[str]:
        with cat.engine.connect() as conn:
            return [s.sha256 for s in find_samples(conn, SampleFilter(**kw))]

    one, two, three = (s.sha256 for s in samples)
    assert shas() == [three, two, one]  # newest first
    assert shas(hash_prefix=samples[0].md5[:6]) == [one]
    assert shas(hash_prefix=samples[1].sha1[:10].upper()) == [two]
    assert shas(hash_prefix=one[:40]) == [one]
    assert shas(name="SPOOL") == [one]
    assert shas(name="*.arm7") == [two]
    assert shas(name="50%") == [three]  # % is literal, not a wildcard
    assert shas(name="_off") == [three]
    assert shas(tag="irc") == [three, one]
    assert shas(file_type="elf32") == [two]
    assert shas(since=T0 + timedelta(days=1)) == [three, two]
    assert shas(until=T0 + timedelta(days=1)) == [one]
    assert shas(tag="irc", limit=1, offset=1) == [one]
    with pytest.raises(CatalogError):
        shas(hash_prefix="xyz!")


def test_get_sample_by_prefix_and_ambiguity(center: Center) -> None:
    cat = center.catalog
    seen: dict[str, NewSample] = {}
    i = 0
    while True:  # two samples whose sha256 share the first four digits
        s = new_sample(str(i).encode(), T0)
        if s.sha256[:4] in seen:
            pair = [seen[s.sha256[:4]], s]
            break
        seen[s.sha256[:4]] = s
        i += 1
    with cat.transaction() as conn:
        cat.add_samples(conn, pair)
    with cat.engine.connect() as conn:
        target = pair[0]
        found = get_sample(conn, target.sha256[:12])
        assert found is not None and found.sha256 == target.sha256
        md5_hit = get_sample(conn, target.md5)
        assert md5_hit is not None and md5_hit.sha256 == target.sha256
        assert get_sample(conn, "0000000000000000000000000000dead") is None
        with pytest.raises(AmbiguousReference):
            get_sample(conn, target.sha256[:4])


def test_event_time_round_trips_exactly(center: Center) -> None:
    cat = center.catalog
    when = datetime(2018, 5, 6, 17, 44, 5, tzinfo=UTC)  # no microseconds
    with cat.transaction() as conn:
        cat.add_events(conn, [event(9, "192.0.2.9", when)])
    with cat.engine.connect() as conn:
        got = conn.execute(select(EVENT.c.time)).scalar_one()
        assert got == when
        assert count_events(conn, EventFilter(since=when, until=when + timedelta(seconds=1))) == 1
