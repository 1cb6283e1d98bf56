"""Why are these two different? Two versions (or two runs) compared by content, metadata, how
each was made, and ancestry.

:func:`diff` answers with a :class:`LineageDiff`:

- ``files``: files added, removed and changed, from the two manifests. A manifest is stored as
  content-addressed pages (:mod:`lineage.manifest`): a page both manifests hold is skipped by
  its digest, so two 10,000-file versions that differ in one file read two pages, not 300;
- ``metadata`` and ``description``: a key-by-key diff, nested keys as paths (``optim.lr``);
- ``made``: the producing runs (a version's creating run, or the run itself) compared: config
  and summary key by key, code (commit, dirty, script) and job type;
- ``ancestry``: the nearest common ancestors in the derivation view (the merge bases: all of
  them, in a DAG of merges), the runs on each side since them, and the upstream inputs that
  differ aligned by artifact (A used ``games:v4``, B ``games:v3``); shared ones are counted.

Two upstream walks (one store round trip each, with the records) and the differing manifest
pages: nothing else is read. The graph work is networkx on the two walks.

>>> d = lineage.Api(project="surgery").diff("policy:production", "policy:v33")
>>> d.ancestry.merge_bases, [i.to_json() for i in d.ancestry.inputs]
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from lineage.errors import BlobNotFound
from lineage.manifest import Entry, manifest_pages, read_page
from lineage.protocol import LineageService
from lineage.records import PRODUCED, Node, RunRecord, Subgraph, VersionRecord
from lineage.storage.blobs import BlobStore

__all__ = [
    "DEPTH",
    "AlignedInput",
    "Ancestry",
    "ChainStep",
    "ContentDiff",
    "FileChange",
    "KeyChange",
    "LineageDiff",
    "Made",
    "Side",
    "ancestry",
    "diff",
    "diff_manifests",
    "key_diff",
]

DEPTH = 100  # generations walked up from each side (a server's default limit)
Change = Literal["added", "removed", "changed"]
_ABSENT: Any = object()


# key by key --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class KeyChange:
    """One key that differs: ``keys`` the path into nested mappings, ``a``/``b`` its values
    (None where ``change`` says the key is absent)."""

    keys: tuple[str, ...]
    change: Change
    a: Any = None
    b: Any = None

    @property
    def path(self) -> str:
        return ".".join(self.keys)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "keys": list(self.keys), "change": self.change}
        if self.change != "added":
            out["a"] = self.a
        if self.change != "removed":
            out["b"] = self.b
        return out


def _flat(value: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    out: dict[tuple[str, ...], Any] = {}
    for key, item in value.items():
        keys = (*prefix, str(key))
        if isinstance(item, Mapping) and item:
            out.update(_flat(item, keys))
        else:  # a leaf: a scalar, a list, or an empty mapping
            out[keys] = item
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON: 1 and 1.0 and True differ, NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and _canonical(a) == _canonical(b)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def key_diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[KeyChange, ...]:
    """The keys of two (nested) mappings that differ, sorted by path.

    >>> [c.to_json() for c in key_diff({"opt": {"lr": 0.1}}, {"opt": {"lr": 0.2}})]
    [{'path': 'opt.lr', 'keys': ['opt', 'lr'], 'change': 'changed', 'a': 0.1, 'b': 0.2}]
    """
    fa, fb = _flat(a), _flat(b)
    changes = []
    for keys in sorted(fa.keys() | fb.keys()):
        va, vb = fa.get(keys, _ABSENT), fb.get(keys, _ABSENT)
        if va is _ABSENT:
            changes.append(KeyChange(keys=keys, change="added", b=vb))
        elif vb is _ABSENT:
            changes.append(KeyChange(keys=keys, change="removed", a=va))
        elif not _same(va, vb):
            changes.append(KeyChange(keys=keys, change="changed", a=va, b=vb))
    return tuple(changes)


# content -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FileChange:
    path: str
    change: Change
    a: Entry | None = None
    b: Entry | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "a": None if self.a is None else self.a.to_json(),
            "b": None if self.b is None else self.b.to_json(),
        }


@dataclass(frozen=True, kw_only=True)
class ContentDiff:
    """Files that differ, by path; ``unchanged`` counts the rest. ``pages_read`` and
    ``pages_skipped`` say how much of the two manifests had to be read."""

    added: tuple[FileChange, ...] = ()
    removed: tuple[FileChange, ...] = ()
    changed: tuple[FileChange, ...] = ()
    unchanged: int = 0
    pages_read: int = 0
    pages_skipped: int = 0

    @property
    def same(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": [f.to_json() for f in self.added],
            "removed": [f.to_json() for f in self.removed],
            "changed": [f.to_json() for f in self.changed],
            "unchanged": self.unchanged,
            "pages_read": self.pages_read,
            "pages_skipped": self.pages_skipped,
        }


def diff_manifests(blobs: BlobStore, a: str, b: str) -> ContentDiff:
    """The files that differ between two manifests (by root digest).

    A path lives in exactly one page of a manifest, so a page that both hold (same digest,
    same entries) holds no difference: only the pages of one side alone are read.
    """
    if a == b:
        pages = manifest_pages(blobs, a)
        return ContentDiff(unchanged=sum(n for _, n in pages), pages_skipped=2 * len(pages))
    pages_a, pages_b = manifest_pages(blobs, a), manifest_pages(blobs, b)
    shared = {d for d, _ in pages_a} & {d for d, _ in pages_b}
    only_a = [d for d, _ in pages_a if d not in shared]
    only_b = [d for d, _ in pages_b if d not in shared]
    ea = {e.path: e for d in only_a for e in read_page(blobs, d)}
    eb = {e.path: e for d in only_b for e in read_page(blobs, d)}
    added, removed, changed = [], [], []
    for path in sorted(ea.keys() | eb.keys()):
        x, y = ea.get(path), eb.get(path)
        if x is None:
            added.append(FileChange(path=path, change="added", b=y))
        elif y is None:
            removed.append(FileChange(path=path, change="removed", a=x))
        elif x != y:
            changed.append(FileChange(path=path, change="changed", a=x, b=y))
    shared_count = sum(n for d, n in pages_a if d in shared)
    return ContentDiff(
        added=tuple(added),
        removed=tuple(removed),
        changed=tuple(changed),
        unchanged=shared_count + len(ea) - len(removed) - len(changed),
        pages_read=len(only_a) + len(only_b),
        pages_skipped=len(pages_a) + len(pages_b) - len(only_a) - len(only_b),
    )


# the two sides -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Side:
    """One side of a diff: a version (with the run that created it) or a run."""

    id: str
    kind: Literal["artifact_version", "run"]
    version: VersionRecord | None = None
    run: RunRecord | None = None  # the version's creating run, or the run itself

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "kind": self.kind}
        if self.version is not None:
            v = self.version
            out.update(ref=v.ref, type=v.type, digest=v.digest, size=v.size)
            out.update(files=v.file_count, state=v.state)
        if self.run is not None:
            r = self.run
            out["run"] = {"id": r.id, "name": r.name, "project": r.project}
            out["run"].update(job_type=r.job_type, state=r.state)
        return out


@dataclass(frozen=True, kw_only=True)
class Made:
    """How each side was made: the producing runs compared."""

    a_run: str | None
    b_run: str | None
    job_type: KeyChange | None = None
    config: tuple[KeyChange, ...] = ()
    summary: tuple[KeyChange, ...] = ()
    code: tuple[KeyChange, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "a_run": self.a_run,
            "b_run": self.b_run,
            "job_type": None if self.job_type is None else self.job_type.to_json(),
            "config": [c.to_json() for c in self.config],
            "summary": [c.to_json() for c in self.summary],
            "code": [c.to_json() for c in self.code],
        }


def _code(run: RunRecord | None) -> dict[str, Any]:
    if run is None or run.code is None:
        return {}
    return {"commit": run.code.commit, "dirty": run.code.dirty, "script": run.code.script}


def _made(a: RunRecord | None, b: RunRecord | None) -> Made:
    jobs = key_diff({"job_type": a.job_type} if a else {}, {"job_type": b.job_type} if b else {})
    return Made(
        a_run=a.id if a else None,
        b_run=b.id if b else None,
        job_type=jobs[0] if jobs else None,
        config=key_diff(a.config if a else {}, b.config if b else {}),
        summary=key_diff(a.summary if a else {}, b.summary if b else {}),
        code=key_diff(_code(a), _code(b)),
    )


# ancestry ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ChainStep:
    """A run on one side since the merge bases, with what it consumed and produced there."""

    run: RunRecord
    consumed: tuple[str, ...]
    produced: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        r = self.run
        return {
            "run": r.id,
            "name": r.name,
            "project": r.project,
            "job_type": r.job_type,
            "consumed": list(self.consumed),
            "produced": list(self.produced),
        }


@dataclass(frozen=True, kw_only=True)
class AlignedInput:
    """Upstream versions of one artifact that only one side has: ``a`` and ``b``, sorted."""

    artifact: str  # project/name
    a: tuple[VersionRecord, ...] = ()
    b: tuple[VersionRecord, ...] = ()

    def to_json(self) -> dict[str, Any]:
        def one(v: VersionRecord) -> dict[str, Any]:
            return {"ref": v.ref, "description": v.description}

        return {
            "artifact": self.artifact,
            "a": [one(v) for v in self.a],
            "b": [one(v) for v in self.b],
        }


@dataclass(frozen=True, kw_only=True)
class Ancestry:
    """Where the two came apart.

    ``merge_bases``: the nearest common ancestors (nodes upstream of both, or one side itself,
    with nothing else upstream of both below them); versions, unless a run side is upstream of
    the other. ``chain_a``/``chain_b``: the runs downstream of a merge base and upstream of (or
    being) that side, in order; every upstream run when there is no merge base.
    ``inputs``: upstream versions of one side only, off the chains, aligned by artifact;
    ``shared_inputs``: how many upstream versions both have. ``truncated`` when a walk stopped
    at its depth (an older common ancestor may lie beyond).
    """

    merge_bases: tuple[str, ...] = ()
    chain_a: tuple[ChainStep, ...] = ()
    chain_b: tuple[ChainStep, ...] = ()
    inputs: tuple[AlignedInput, ...] = ()
    shared_inputs: int = 0
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "merge_bases": list(self.merge_bases),
            "chain_a": [s.to_json() for s in self.chain_a],
            "chain_b": [s.to_json() for s in self.chain_b],
            "inputs": [i.to_json() for i in self.inputs],
            "shared_inputs": self.shared_inputs,
            "truncated": self.truncated,
        }


def _is_version(node_id: str) -> bool:
    return ":" in node_id


def ancestry(a: Subgraph, b: Subgraph) -> Ancestry:
    """Merge bases, chains and differing inputs of two upstream walks (roots ``a.root`` and
    ``b.root``)."""
    assert a.root is not None and b.root is not None
    import networkx as nx  # here: a process that draws no graph does not load it

    g = nx.DiGraph()
    nodes: dict[str, Node] = {}
    for graph in (a, b):
        nodes.update((n.id, n) for n in graph.nodes)
        g.add_nodes_from(n.id for n in graph.nodes)
        g.add_edges_from((e.source, e.target) for e in graph.edges)
    g.add_nodes_from((a.root, b.root))
    up_a = nx.ancestors(g, a.root) | {a.root}
    up_b = nx.ancestors(g, b.root) | {b.root}
    common = up_a & up_b
    # common is closed upwards, so a node of it has a descendant in it iff a successor is in it
    bases = sorted(c for c in common if not any(s in common for s in g.successors(c)))
    below = set(bases).union(*(nx.descendants(g, c) for c in bases)) if bases else set()

    def chain(root: str, up: set[str]) -> tuple[ChainStep, ...]:
        runs = [
            n for n in up if not _is_version(n) and n not in common and (not bases or n in below)
        ]
        chosen = set(runs)
        # ordered as the data flowed (through the versions between them), then by start
        walk = nx.lexicographical_topological_sort(g.subgraph(up), key=lambda n: _started(nodes, n))
        order = [n for n in walk if n in chosen]
        return tuple(
            ChainStep(
                run=_run(nodes, r),
                consumed=tuple(sorted(g.predecessors(r))),
                produced=tuple(sorted(p for p in g.successors(r) if p in up)),
            )
            for r in order
            if nodes.get(r) is not None and nodes[r].run is not None
        )

    def inputs(up: set[str], root: str) -> set[str]:
        return {n for n in up - common - below - {root} if _is_version(n)}

    only_a, only_b = inputs(up_a, a.root), inputs(up_b, b.root)
    by_artifact: dict[str, tuple[list[VersionRecord], list[VersionRecord]]] = {}
    for side, ids in ((0, only_a), (1, only_b)):
        for node_id in ids:
            version = nodes[node_id].version if node_id in nodes else None
            if version is None:
                continue
            by_artifact.setdefault(f"{version.project}/{version.name}", ([], []))[side].append(
                version
            )
    aligned = tuple(
        AlignedInput(
            artifact=artifact,
            a=tuple(sorted(pair[0], key=lambda v: v.index)),
            b=tuple(sorted(pair[1], key=lambda v: v.index)),
        )
        for artifact, pair in sorted(by_artifact.items())
    )
    shared = {n for n in common if _is_version(n)} - {a.root, b.root}
    return Ancestry(
        merge_bases=tuple(bases),
        chain_a=chain(a.root, up_a),
        chain_b=chain(b.root, up_b),
        inputs=aligned,
        shared_inputs=len(shared),
        truncated=a.truncated or b.truncated,
    )


def _started(nodes: Mapping[str, Node], node_id: str) -> tuple[float, str]:
    node = nodes.get(node_id)
    return (node.run.started_at if node and node.run else 0.0, node_id)


def _run(nodes: Mapping[str, Node], node_id: str) -> RunRecord:
    run = nodes[node_id].run
    assert run is not None
    return run


# the whole answer --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class LineageDiff:
    """Two versions or runs compared (module docstring). ``files`` is None unless both sides
    are versions whose file lists (manifests) the blob store holds; ``unlisted`` names the
    versions whose file list it does not hold (a deleted version's, collected; a graph copied
    without its blobs): the rest is compared all the same. ``to_json`` is what
    ``lineage diff --json`` prints."""

    a: Side
    b: Side
    files: ContentDiff | None
    metadata: tuple[KeyChange, ...]
    description: KeyChange | None
    made: Made
    ancestry: Ancestry
    unlisted: tuple[str, ...] = ()
    #: the two upstream walks the diff was made from (A's, B's), for a picture of them
    upstreams: tuple[Subgraph, Subgraph] | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "files": None if self.files is None else self.files.to_json(),
            "metadata": [c.to_json() for c in self.metadata],
            "description": None if self.description is None else self.description.to_json(),
            "made": self.made.to_json(),
            "ancestry": self.ancestry.to_json(),
            "unlisted": list(self.unlisted),
        }


def _files(
    blobs: BlobStore, a: VersionRecord, b: VersionRecord
) -> tuple[ContentDiff | None, tuple[str, ...]]:
    """The files that differ, or None and the versions whose file list ``blobs`` lacks."""
    try:
        return diff_manifests(blobs, a.digest, b.digest), ()
    except BlobNotFound:
        missing = blobs.missing([a.digest, b.digest])
        if not missing:
            raise  # a page of a list that is there: a broken store, not a missing list
        return None, tuple(v.id for v in (a, b) if v.digest in missing)


def _side(graph: Subgraph, service: LineageService) -> Side:
    root = graph.root
    assert root is not None
    found = {n.id: n for n in graph.nodes}
    node = found.get(root)
    if node is None or node.run is not None:
        run = node.run if node is not None else service.get_run(root)
        return Side(id=root, kind="run", run=run)
    version = node.version
    assert version is not None
    makers = [e.source for e in graph.edges if e.target == root and e.kind == PRODUCED]
    creator = version.created_by if version.created_by in makers else min(makers, default=None)
    run = found[creator].run if creator is not None and creator in found else None
    return Side(id=root, kind="artifact_version", version=version, run=run)


def diff(
    service: LineageService,
    a: str,
    b: str,
    *,
    default_project: str | None = None,
    depth: int = DEPTH,
) -> LineageDiff:
    """Compare two versions (refs) or two runs (ids), or one of each (module docstring)."""
    ga = service.lineage(a, "upstream", depth, default_project=default_project)
    gb = service.lineage(b, "upstream", depth, default_project=default_project)
    side_a, side_b = _side(ga, service), _side(gb, service)
    va, vb = side_a.version, side_b.version
    files, unlisted = _files(service.blobs, va, vb) if va and vb else (None, ())
    description = key_diff(
        {"description": va.description} if va and va.description is not None else {},
        {"description": vb.description} if vb and vb.description is not None else {},
    )
    return LineageDiff(
        a=side_a,
        b=side_b,
        files=files,
        metadata=key_diff(va.metadata if va else {}, vb.metadata if vb else {}),
        description=description[0] if description else None,
        made=_made(side_a.run, side_b.run),
        ancestry=ancestry(ga, gb),
        unlisted=unlisted,
        upstreams=(ga, gb),
    )
