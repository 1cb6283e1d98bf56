"""Lineage diff against an oracle: generated histories replayed into a store (both backends),
every answer compared with a direct Python comparison of what was logged and with networkx
on the same edges."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
from hypothesis import given, settings
from hypothesis import strategies as st

import lineage
from lineage.cli import cli
from lineage.diff import diff_manifests, key_diff
from lineage.hashing import hash_bytes
from lineage.manifest import Entry, manifest_pages, write_manifest
from lineage.records import CodeVersion, RunRecord
from lineage.storage.local import LocalBlobStore

# the oracle's own flattening: nested keys as paths, empty mappings as values


def flat(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, dict) and item:
            out.update(flat(item, path + "."))
        else:
            out[path] = item
    return out


def expected_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    fa, fb = flat(a), flat(b)
    missing = "<absent>"
    return {
        k: (fa.get(k, missing), fb.get(k, missing))
        for k in fa.keys() | fb.keys()
        if json.dumps(fa.get(k, missing)) != json.dumps(fb.get(k, missing))
    }


def got_keys(changes: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    missing = "<absent>"
    return {c["path"]: (c.get("a", missing), c.get("b", missing)) for c in changes}


# generated histories ---------------------------------------------------------------------


@dataclass
class Logged:
    ref: str
    files: dict[str, bytes]
    metadata: dict[str, Any]
    description: str | None
    run: str


@dataclass
class History:
    versions: dict[str, Logged] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> config, summary
    edges: list[tuple[str, str]] = field(default_factory=list)

    def graph(self) -> nx.DiGraph:
        g = nx.DiGraph()
        g.add_nodes_from(self.versions)
        g.add_nodes_from(self.runs)
        g.add_edges_from(self.edges)
        return g


ARTIFACTS = [("p1", "corpus", "dataset"), ("p1", "labels", "dataset"), ("p1", "model", "model")]
ARTIFACTS += [("p2", "model", "model"), ("p2", "encoder", "model")]


def nested(rng: random.Random) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in rng.sample(["lr", "seed", "epochs", "note"], rng.randint(1, 4)):
        out[key] = rng.choice([1, 2, 1.0, 0.5, "a", True, None, [1, 2]])
    if rng.random() < 0.7:
        out["opt"] = {k: rng.choice([0.9, 0.99, "adam"]) for k in rng.sample("xyz", 2)}
    if rng.random() < 0.2:
        out["empty"] = {}
    return out


def generate(rng: random.Random, root: Path, runs: int) -> History:
    history = History()
    counter = 0
    for step in range(runs):
        project, name, type_ = ARTIFACTS[rng.randrange(len(ARTIFACTS))]
        if step < 2:
            project, name, type_ = ARTIFACTS[step]
        config = nested(rng)
        with lineage.init(
            project=project, job_type=rng.choice(["train", "prep"]), config=config
        ) as run:
            existing = list(history.versions)
            inputs = (
                rng.sample(existing, min(len(existing), rng.randint(1, 3))) if step >= 2 else []
            )
            for ref in inputs:
                run.use_artifact(ref)
                history.edges.append((ref, run.id))
            same = [r for r in inputs if r.rsplit(":", 1)[0] == f"{project}/{name}"]
            files = dict(history.versions[same[0]].files) if same else {}
            for _ in range(rng.randint(1, 3)):
                path = rng.choice(["a.bin", "b.bin", "d/c.bin", "d/e.bin", "f.txt"])
                if path in files and rng.random() < 0.3:
                    del files[path]
                else:
                    files[path] = rng.randbytes(rng.randint(0, 40))
            counter += 1
            files["id.txt"] = str(counter).encode()  # every version new content
            folder = root / f"v{counter}"
            for path, data in files.items():
                (folder / path).parent.mkdir(parents=True, exist_ok=True)
                (folder / path).write_bytes(data)
            metadata = nested(rng)
            description = rng.choice([None, "first", "second"])
            art = lineage.Artifact(name, type=type_, metadata=metadata, description=description)
            art.add_dir(folder)
            v = run.log_artifact(art)
            history.edges.append((run.id, v.ref))
            summary = {"acc": rng.choice([0.5, 0.75]), "deep": {"loss": rng.choice([1, 2])}}
            run.log(summary)
            history.versions[v.ref] = Logged(
                ref=v.ref, files=files, metadata=metadata, description=description, run=run.id
            )
            history.runs[run.id] = {"config": config, "summary": summary}
    # a criss-cross: two runs each merge the same two versions, so their outputs have two
    # merge bases
    g = history.graph()
    unrelated = [
        (x, y)
        for x in sorted(history.versions)
        for y in sorted(history.versions)
        if x < y and not nx.has_path(g, x, y) and not nx.has_path(g, y, x)
    ]
    parents = rng.choice(unrelated)  # the first two versions at least: both made from nothing
    for step in range(2):
        with lineage.init(project="p1", job_type="merge", config={"step": step}) as run:
            for ref in parents:
                run.use_artifact(ref)
                history.edges.append((ref, run.id))
            folder = root / f"merge{step}"
            folder.mkdir(parents=True)
            (folder / "m.bin").write_bytes(bytes([step]))
            art = lineage.Artifact("merged", type="model")
            art.add_dir(folder)
            v = run.log_artifact(art)
            history.edges.append((run.id, v.ref))
            history.versions[v.ref] = Logged(
                ref=v.ref, files={"m.bin": bytes([step])}, metadata={}, description=None, run=run.id
            )
            history.runs[run.id] = {"config": {"step": step}, "summary": {}}
    return history


def merge_bases(g: nx.DiGraph, a: str, b: str) -> set[str]:
    common = (nx.ancestors(g, a) | {a}) & (nx.ancestors(g, b) | {b})
    return {c for c in common if not nx.descendants(g, c) & common}


def check(api: lineage.Api, history: History, a: str, b: str) -> None:
    g = history.graph()
    got = api.diff(a, b).to_json()
    # content, metadata, description (versions only)
    if a in history.versions and b in history.versions:
        la, lb = history.versions[a], history.versions[b]
        files = got["files"]
        added = {f["path"] for f in files["added"]}
        removed = {f["path"] for f in files["removed"]}
        changed = {f["path"]: (f["a"]["digest"], f["b"]["digest"]) for f in files["changed"]}
        assert added == set(lb.files) - set(la.files)
        assert removed == set(la.files) - set(lb.files)
        assert changed == {
            p: (hash_bytes(la.files[p]), hash_bytes(lb.files[p]))
            for p in set(la.files) & set(lb.files)
            if la.files[p] != lb.files[p]
        }
        assert files["unchanged"] == sum(
            1 for p in set(la.files) & set(lb.files) if la.files[p] == lb.files[p]
        )
        assert got_keys(got["metadata"]) == expected_keys(la.metadata, lb.metadata)
        desc = expected_keys(
            {"description": la.description} if la.description is not None else {},
            {"description": lb.description} if lb.description is not None else {},
        )
        assert got_keys([got["description"]] if got["description"] else []) == desc
        run_a, run_b = la.run, lb.run
    else:
        assert got["files"] is None
        run_a, run_b = a, b
    # how made: the creating runs
    made = got["made"]
    assert (made["a_run"], made["b_run"]) == (run_a, run_b)
    ra, rb = history.runs[run_a], history.runs[run_b]
    assert got_keys(made["config"]) == expected_keys(ra["config"], rb["config"])
    assert got_keys(made["summary"]) == expected_keys(ra["summary"], rb["summary"])
    assert made["code"] == []  # no git repository: no code on either side
    # ancestry, against networkx on the edges that were logged
    anc = got["ancestry"]
    bases = merge_bases(g, a, b)
    assert set(anc["merge_bases"]) == bases
    if a.startswith("p1/merged:") and b.startswith("p1/merged:") and a != b:
        assert len(bases) == 2  # the criss-cross
    if bases:
        assert nx.lowest_common_ancestor(g, a, b) in bases
    up_a, up_b = nx.ancestors(g, a) | {a}, nx.ancestors(g, b) | {b}
    common = up_a & up_b
    below = set(bases).union(*(nx.descendants(g, c) for c in bases))
    for key, up in (("chain_a", up_a), ("chain_b", up_b)):
        want = {n for n in up - common if n in history.runs and (not bases or n in below)}
        steps = [s["run"] for s in anc[key]]
        assert set(steps) == want and len(steps) == len(want)
        position = {r: i for i, r in enumerate(steps)}
        for u, v in nx.transitive_closure_dag(g.subgraph(up)).edges:
            if u in position and v in position:
                assert position[u] < position[v]  # in the order the data flowed
        for step in anc[key]:
            assert set(step["consumed"]) == set(g.predecessors(step["run"]))
            assert set(step["produced"]) == {p for p in g.successors(step["run"]) if p in up}
    only = {
        side: {n for n in up - common - below - {root} if n in history.versions}
        for side, up, root in (("a", up_a, a), ("b", up_b, b))
    }
    aligned: dict[str, dict[str, list[str]]] = {}
    for side, refs in only.items():
        for ref in refs:
            artifact = ref.rsplit(":", 1)[0]
            aligned.setdefault(artifact, {"a": [], "b": []})[side].append(ref)
    want_inputs = {
        k: (sorted(v["a"], key=_index), sorted(v["b"], key=_index)) for k, v in aligned.items()
    }
    assert {
        i["artifact"]: ([x["ref"] for x in i["a"]], [x["ref"] for x in i["b"]])
        for i in anc["inputs"]
    } == want_inputs
    shared = {n for n in common if n in history.versions} - {a, b}
    assert anc["shared_inputs"] == len(shared)
    assert anc["truncated"] is False


def _index(ref: str) -> int:
    return int(ref.rsplit(":v", 1)[1])


def test_diff_matches_the_oracle(backend, workdir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINEAGE_STORE", backend.store)
    monkeypatch.setenv("LINEAGE_BLOBS", backend.blobs)
    rng = random.Random(12)
    small = backend.name == "neo4j"  # the same checks on a smaller history: the suite's time
    history = generate(rng, workdir / "files", runs=6 if small else 16)
    api = lineage.Api(store=backend.store, blobs=backend.blobs, project="p1")
    refs = sorted(history.versions)
    pairs = [(rng.choice(refs), rng.choice(refs)) for _ in range(4 if small else 14)]
    pairs += [(refs[0], refs[0]), ("p1/merged:v0", "p1/merged:v1")]
    for a, b in pairs:
        check(api, history, a, b)
    run_ids = sorted(history.runs)
    for _ in range(2 if small else 4):
        check(api, history, rng.choice(run_ids), rng.choice(run_ids))


# content: pages skipped by digest, against a full comparison ------------------------------

entries = st.dictionaries(
    st.from_regex(r"[a-z]{1,3}(/[a-z]{1,3})?\.bin", fullmatch=True),
    st.integers(min_value=0, max_value=5),
    min_size=0,
    max_size=300,
)


def manifest_of(files: Mapping[str, int]) -> dict[str, Entry]:
    return {
        p: Entry(path=p, size=n, digest=hash_bytes(f"{p}{n}".encode())) for p, n in files.items()
    }


@settings(max_examples=25, deadline=None)
@given(
    base=entries, edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(-1, 5)), max_size=4)
)
def test_content_diff_matches_a_full_comparison(tmp_path_factory, base, edits) -> None:  # type: ignore[no-untyped-def]
    blobs = LocalBlobStore(tmp_path_factory.mktemp("blobs"))
    other = dict(base)
    for where, size in edits:  # change, remove (-1) or add a file
        paths = sorted(other)
        if paths and where % 3:
            path = paths[where % len(paths)]
            if size < 0:
                del other[path]
            else:
                other[path] = size + 10
        else:
            other[f"new/{where}.bin"] = max(size, 0)
    ma, mb = manifest_of(base), manifest_of(other)
    a, b = write_manifest(blobs, ma.values()), write_manifest(blobs, mb.values())
    got = diff_manifests(blobs, a, b)
    assert [f.path for f in got.added] == sorted(mb.keys() - ma.keys())
    assert [f.path for f in got.removed] == sorted(ma.keys() - mb.keys())
    assert [(f.path, f.a, f.b) for f in got.changed] == [
        (p, ma[p], mb[p]) for p in sorted(ma.keys() & mb.keys()) if ma[p] != mb[p]
    ]
    assert got.unchanged == sum(1 for p in ma.keys() & mb.keys() if ma[p] == mb[p])
    pages = len(manifest_pages(blobs, a)) + len(manifest_pages(blobs, b))
    assert got.pages_read + got.pages_skipped == pages


def test_one_changed_file_in_10000_reads_two_pages(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    files = {f"d{i // 100}/{i}.bin": i for i in range(10_000)}
    ma = manifest_of(files)
    mb = dict(ma)
    mb["d42/4217.bin"] = Entry(path="d42/4217.bin", size=1, digest=hash_bytes(b"new"))
    a, b = write_manifest(blobs, ma.values()), write_manifest(blobs, mb.values())
    got = diff_manifests(blobs, a, b)
    assert [(f.path, f.b) for f in got.changed] == [("d42/4217.bin", mb["d42/4217.bin"])]
    assert not got.added and not got.removed and got.unchanged == 9_999
    assert got.pages_read == 2 and got.pages_skipped > 100


# key by key ---------------------------------------------------------------------------------


def test_key_diff_tells_types_apart_and_keeps_nan_equal() -> None:
    nan = float("nan")
    changes = key_diff(
        {"a": 1, "b": True, "c": nan, "d": {"e": {"f": 1}}, "g": {}, "h": [1, 2]},
        {"a": 1.0, "b": 1, "c": nan, "d": {"e": {"f": 2}}, "g": {"x": 1}, "h": [1, 2]},
    )
    assert [(c.path, c.change) for c in changes] == [
        ("a", "changed"),
        ("b", "changed"),
        ("d.e.f", "changed"),
        ("g", "removed"),
        ("g.x", "added"),
    ]


def test_code_and_job_type_of_the_producing_runs() -> None:
    from lineage.diff import _made

    one = RunRecord(
        id="r1", project="p", name="a", job_type="train",
        code=CodeVersion(commit="c1", dirty=False, script="train.py"),
    )  # fmt: skip
    two = RunRecord(
        id="r2", project="p", name="b", job_type="finetune",
        code=CodeVersion(commit="c2", dirty=True, script="train.py"),
    )  # fmt: skip
    made = _made(one, two)
    assert made.job_type is not None and (made.job_type.a, made.job_type.b) == ("train", "finetune")
    assert {c.path: (c.a, c.b) for c in made.code} == {
        "commit": ("c1", "c2"),
        "dirty": (False, True),
    }


# the command line ----------------------------------------------------------------------------


def test_cli_diff_text_and_json(tmp_path, workdir, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    monkeypatch.setenv("LINEAGE_STORE", str(tmp_path / "store"))  # the stores: the oracle test
    monkeypatch.setenv("LINEAGE_BLOBS", str(tmp_path / "blobs"))
    versions = {}
    for name, data in (("corpus", b"v3"), ("corpus", b"v4"), ("labels", b"l2")):
        with lineage.init(project="nlp", job_type="prep") as run:
            Path("f.bin").write_bytes(data)
            art = lineage.Artifact(name, type="dataset")
            art.add_file("f.bin")
            versions[data] = run.log_artifact(art).ref
    made = []
    for inputs, lr in (([b"v3"], 0.1), ([b"v4", b"l2"], 0.2)):
        with lineage.init(project="nlp", job_type="train", config={"opt": {"lr": lr}}) as run:
            for data in inputs:
                run.use_artifact(versions[data])
            Path("w.bin").write_bytes(str(lr).encode())
            art = lineage.Artifact("model", type="model", metadata={"lr": lr})
            art.add_file("w.bin")
            made.append(run.log_artifact(art).ref)
    runner = CliRunner()
    result = runner.invoke(cli, ["-p", "nlp", "diff", "model:v0", "model:v1"])
    assert result.exit_code == 0, result.output
    assert "~ opt.lr: 0.1 -> 0.2" in result.output
    assert "merge base: none" in result.output
    assert "A used corpus:v0" in result.output and "B used corpus:v1" in result.output
    assert "only B used labels:v0" in result.output
    assert "~ w.bin" in result.output
    assert "  model, 1 file, 3 B; made by " in result.output  # was "1 files"
    assert "1 files" not in result.output and "1 runs" not in result.output
    result = runner.invoke(cli, ["-p", "nlp", "diff", "model:v0", "model:v1", "--json"])
    data = json.loads(result.output)
    assert [i["artifact"] for i in data["ancestry"]["inputs"]] == ["nlp/corpus", "nlp/labels"]
    assert data["made"]["config"] == [
        {"path": "opt.lr", "keys": ["opt", "lr"], "change": "changed", "a": 0.1, "b": 0.2}
    ]
    before = runner.invoke(cli, ["-p", "nlp", "diff", "model:v0", "model:v9"])
    assert before.exit_code == 3 and before.output.startswith("error:")
    assert len(before.output.strip().splitlines()) == 1
