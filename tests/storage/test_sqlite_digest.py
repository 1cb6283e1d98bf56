"""SQLite's digest index (``versions_digest_key``: project, name, epoch of 65,536 indexes,
first 16 characters of the digest): lookups by digest find the right version when digests
share the prefix, across epochs, and in a store made before the index (which had one keyed
by the whole digest), checked against what the store held before it was opened again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from lineage.records import Event, VersionRecord
from lineage.storage.graph import NewVersion
from lineage.storage.sqlite import _BY_DIGEST, SQLiteGraphStore

PREFIX = "ab12" * 4  # 16 characters: the indexed part


def new(digest: str, *, name: str = "model") -> NewVersion:
    return NewVersion(
        project="p", name=name, type="model", digest=digest, size=1, file_count=1,
        metadata={}, description=None, run_id="r1", at=1.7e9,
    )  # fmt: skip


def version(index: int, digest: str) -> VersionRecord:
    return VersionRecord(
        project="p", name="model", type="model", index=index, digest=digest, size=1,
        file_count=1, created_by="r1", created_at=1.7e9 + index,
    )  # fmt: skip


def gone(target: str) -> Event:
    return Event(project="p", target=target, kind="version.deleted", at=1.8e9)


def indexes(path: Path) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        return {name: sql for name, sql in rows if sql}


def test_digests_sharing_the_prefix_are_told_apart(tmp_path: Path) -> None:
    store = SQLiteGraphStore(tmp_path / "graph.db")
    a, b, absent = PREFIX + "0" * 48, PREFIX + "1" * 48, PREFIX + "2" * 48
    va, made_a = store.commit_version(new(a))
    vb, made_b = store.commit_version(new(b))
    assert (va.index, made_a, vb.index, made_b) == (0, True, 1, True)
    again_a, made = store.commit_version(new(a))
    assert (again_a.index, again_a.digest, made) == (0, a, False)
    again_b, made = store.commit_version(new(b))
    assert (again_b.index, again_b.digest, made) == (1, b, False)
    found = store.versions_with_digests(
        [("p", "model", a), ("p", "model", b), ("p", "model", absent)]
    )
    assert {key: v.index for key, v in found.items()} == {
        ("p", "model", a): 0,
        ("p", "model", b): 1,
    }
    # the same digest in another artifact is another version
    other, made = store.commit_version(new(a, name="other"))
    assert (other.name, other.index, made) == ("other", 0, True)
    # a digest shorter than the prefix, and one that is no hex at all, are keys as well
    short, made = store.commit_version(new("abc"))
    assert (short.index, made) == (2, True)
    assert store.commit_version(new("abc"))[0].index == 2
    assert store.commit_version(new("ÿ" * 20))[0].index == 3
    assert store.commit_version(new("ÿ" * 20))[1] is False


def test_lookups_search_every_epoch_and_find_the_lowest_index(tmp_path: Path) -> None:
    store = SQLiteGraphStore(tmp_path / "graph.db")
    d0, d1, d2, twice = (PREFIX + f"{i:048x}" for i in range(4))
    store.import_records(
        versions=[
            version(0, d0), version(5, twice), version(70_000, d1),
            version(70_005, twice), version(140_000, d2),
        ]
    )  # fmt: skip
    for digest, index in ((d0, 0), (d1, 70_000), (d2, 140_000), (twice, 5)):
        found, made = store.commit_version(new(digest))
        assert (found.index, found.digest, made) == (index, digest, False)
    wanted = [("p", "model", d) for d in (d0, d1, d2, twice)]
    found_all = store.versions_with_digests(wanted)
    assert {key[2]: v.index for key, v in found_all.items()} == {
        d0: 0, d1: 70_000, d2: 140_000, twice: 5,
    }  # fmt: skip
    # a deleted version is no match: the next one of the digest is, or a new version
    store.delete_version("p/model:v5", gone("p/model:v5"))
    assert store.commit_version(new(twice))[0].index == 70_005
    store.delete_version("p/model:v0", gone("p/model:v0"))
    fresh, made = store.commit_version(new(d0))
    assert (fresh.index, made) == (140_001, True)
    assert store.versions_with_digests([("p", "model", d0)])[("p", "model", d0)].index == 140_001


def test_the_lookup_seeks_the_whole_key(tmp_path: Path) -> None:
    """The index is sought on all four columns (a bare ``v.digest = ?`` next to the prefix
    term would let SQLite's constant propagation hide the prefix from the planner: three
    columns, every version of the epoch read)."""
    store = SQLiteGraphStore(tmp_path / "graph.db")
    plan = store._db().execute("EXPLAIN QUERY PLAN " + _BY_DIGEST, ("[]",)).fetchall()
    details = " | ".join(row[3] for row in plan)
    assert "versions_digest_key (project=? AND name=? AND <expr>=? AND <expr>=?)" in details


def answers(store: SQLiteGraphStore) -> list[Any]:
    versions = store.list_versions("p", "model", include_deleted=True)
    return [
        versions,
        store.get_versions([v.id for v in versions]),
        store.versions_with_digests([("p", "model", v.digest) for v in versions]),
        store.list_aliases("p", "model"),
        sorted(store.manifest_digests()),
    ]


def test_a_store_with_the_whole_digest_index_opens_and_answers_the_same(tmp_path: Path) -> None:
    path = tmp_path / "graph.db"
    store = SQLiteGraphStore(path)
    store.import_records(versions=[version(i, f"{i * 7919:064x}") for i in range(300)])
    store.commit_version(new(PREFIX + "0" * 48))
    before = answers(store)
    store.close()
    # what lineage wrote before this index: the same tables, the digest index on the whole
    # digest, no versions_digest_key
    with sqlite3.connect(path) as db:
        db.execute("DROP INDEX versions_digest_key")
        db.execute("CREATE INDEX versions_digest ON versions (project, name, digest)")
    assert "versions_digest_key" not in indexes(path)

    store = SQLiteGraphStore(path)
    assert "versions_digest" not in indexes(path)
    assert "substr(digest, 1, 16)" in indexes(path)["versions_digest_key"]
    assert answers(store) == before
    for i in (0, 150, 299):
        found, made = store.commit_version(new(f"{i * 7919:064x}"))
        assert (found.index, made) == (i, False)
    assert store.commit_version(new(PREFIX + "0" * 48))[0].index == 300
    assert store.commit_version(new(PREFIX + "1" * 48))[0].index == 301
    store.close()
    # and again (an older lineage opened it meanwhile and made its index again): the same
    with sqlite3.connect(path) as db:
        db.execute("CREATE INDEX versions_digest ON versions (project, name, digest)")
    store = SQLiteGraphStore(path)
    assert "versions_digest" not in indexes(path)
    assert store.versions_with_digests([("p", "model", PREFIX + "1" * 48)])
    store.close()
