"""The dashboard: server-rendered HTML over the service, served by ``lineage server`` at ``/``.

Pages::

    GET  /                                    projects: artifacts by type, latest version, aliases
    GET  /search?q=                           a pasted ref, run id, tag or commit; names
    GET  /artifacts/{project}/{name}          versions, and the artifact's event log
    GET  /versions/{project}/{name}/{index}   files, aliases and their history, runs, event
                                              log, lineage and tree pictures (pan, zoom, click)
    POST /versions/{project}/{name}/{index}   new notes (the description): needs a write token
    GET  /versions/{...}/{index}/files/{path} one file's bytes, streamed and verified
    GET  /runs?job_type=&state=&tag=&since=   every run, paged by the store's keyset, with
                                              config and summary columns (lineage.server.runs)
    GET  /compare?run=ID&run=ID               runs side by side, differences marked
    GET  /runs/{run_id}                       config, summary, code version, inputs and outputs
    GET  /signin   POST /signin   POST /signout   a token kept in a cookie (lineage.server.session)
    GET  /static/dashboard.js, /static/dashboard.css

Reading follows the server's rule (anonymous on loopback, else a bearer token), and a
browser signed in on ``/signin`` reads with the token its cookie holds. The notes form
carries a write token in a field (a cookie only ever reads); either way the change is logged
with the token as its actor. Every store call and every
Graphviz run of a page happens in one trip to a worker thread. Templates autoescape everything; the
only markup inserted as is comes from Graphviz, whose labels are validated names.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from lineage import sent
from lineage.errors import BlobNotFound, DigestMismatch, InvalidInput, LineageError, NotFound
from lineage.hashing import CHUNK, Hasher
from lineage.made import artifact_times
from lineage.manifest import Entry
from lineage.names import check_name, check_text
from lineage.pages import MAX_PAGE, first_part
from lineage.plan import MAX_NODES, build
from lineage.records import (
    ArtifactRecord,
    Event,
    Node,
    RunRecord,
    VersionRecord,
    version_id,
)
from lineage.render import plan_to_dot, render, type_colour
from lineage.sent import dataset_name as sent_name
from lineage.server import runs as runlist
from lineage.server.app import STATUS, default_project, principal, service
from lineage.server.auth import Gate, Principal
from lineage.server.graphql.loaders import call
from lineage.server.search import SCAN
from lineage.server.search import search as find
from lineage.server.session import COOKIE, MAX_AGE, same_origin
from lineage.service import Service
from lineage.view import View, classify, page_states

__all__ = [
    "BOUNDS",
    "DEPTH",
    "MAX_ROWS",
    "Bounds",
    "artifact_url",
    "blob_url",
    "file_url",
    "routes",
    "run_url",
    "version_url",
]

logger = logging.getLogger(__name__)

DEPTH = 20  # generations drawn in a version's lineage and derivation tree
MAX_ROWS = 1000  # rows of one table (versions, files, events, search hits)
MAX_QUERY = 128
MAX_FORM = 1024**2  # a description is up to 64K characters, URL-encoded
_CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; script-src 'nonce-{nonce}'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_VERSION_ID = re.compile(r"([^/]+)/([^:]+):v([0-9]+)")

Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, kw_only=True)
class Bounds:
    """How much of a big answer one page reads: a page's work is bounded by these, never by
    the graph (the base model of a 100,000-run tree answers as fast as a leaf). What a page
    leaves out, it says, with the link or command that shows more."""

    tree_nodes: int = 1000  # versions of a derivation tree fetched to draw it, nearest first
    count: int = 10_000  # a bigger tree is counted as "10,000+"
    rows: int = 50  # rows a page of a version's derived versions and consuming runs
    scan: int = SCAN  # runs a search reads, newest first (by id: all)

    def __post_init__(self) -> None:
        for name in ("tree_nodes", "count", "rows", "scan"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"{name} must be a positive integer, got {value!r}")


BOUNDS = Bounds()


# URLs: built from parts, every part quoted ---------------------------------------------------


def _part(text: object) -> str:
    return quote(str(text), safe="")


def artifact_url(project: str, name: str) -> str:
    """The page of an artifact: its versions and event log."""
    return f"/artifacts/{_part(project)}/{_part(name)}"


def version_url(version: VersionRecord) -> str:
    """The page of one version: files, runs, pictures, notes."""
    return f"/versions/{_part(version.project)}/{_part(version.name)}/{version.index}"


def run_url(run_id: str) -> str:
    """The page of a run."""
    return f"/runs/{_part(run_id)}"


def file_url(version: VersionRecord, path: str) -> str:
    """One file of a version, its bytes verified as they are sent."""
    return f"{version_url(version)}/files/{quote(path, safe='/')}"


def blob_url(digest: str) -> str:
    """A file's bytes, served by :mod:`lineage.server.app`."""
    return f"/blobs/{_part(digest)}"


def _link(node: Node) -> str:
    return version_url(node.version) if node.version is not None else run_url(node.id)


# formatting ----------------------------------------------------------------------------------


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _utc(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(at)) if at else "-"


def _iso(at: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)) if at else ""


def _duration(run: RunRecord) -> str:
    if run.finished_at is None:
        return "-"
    seconds = max(0.0, run.finished_at - run.started_at)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {seconds:02d}s"


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _compact(value: object, limit: int = 240) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shown(value: object) -> object:
    """What a page shows of a value: a lone surrogate (refused at the door today, but held by
    stores an older lineage wrote) as its escape ``\\ud800``, since a page must be valid UTF-8."""
    if isinstance(value, str):
        safe = value.encode("utf-8", "backslashreplace").decode("utf-8")
        return Markup(safe) if isinstance(value, Markup) else safe
    return value


_env = jinja2.Environment(
    loader=jinja2.PackageLoader("lineage.server", "templates"),
    autoescape=True,
    finalize=_shown,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(
    size=_size, utc=_utc, iso=_iso, pretty=_pretty, compact=_compact, duration=_duration
)
_env.filters.update(cell=runlist.cell, moment=lambda at: "" if at is None else _iso(at)[:16])
_env.globals.update(
    artifact_url=artifact_url,
    version_url=version_url,
    run_url=run_url,
    blob_url=blob_url,
    file_url=file_url,
    type_colour=type_colour,
    runs_href=runlist.href,
    sent_name=sent_name,
    # names as sent (lineage.sent): what the text views and pictures label nodes with too
    version_label=sent.version_label,
    full_label=sent.full_label,
    joined=sent.joined,
    project_name=sent.project_name,
)
_templates = Jinja2Templates(env=_env)


# pictures ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Picture:
    """A rendered graph for inline use, or why there is none."""

    svg: Markup | None = None
    nodes: int = 0  # nodes drawn, "+k more" groups included
    groups: int = 0
    truncated: bool = False
    note: str | None = None
    fetched: int = 0  # a tree too big to fetch whole: the versions drawn from (0: all)
    total: str = ""  # and how many it holds ("10,000+" past the bound)


@dataclass(frozen=True, kw_only=True)
class _Shape:
    """How the version page draws its pictures: the reader's controls, from the query string
    (``?depth=8&hide=datasets&hide=evaluations&expand=more:...``)."""

    depth: int = DEPTH
    hide_datasets: bool = False
    hide_evaluations: bool = False
    expand: tuple[str, ...] = ()
    base: str = ""  # the page's URL, to which a "+k more" link adds its group
    derived_after: str | None = None  # where the page of derived versions starts (a cursor)
    consumers_after: str | None = None  # where the page of consuming runs starts (a run id)

    def _query(self, expand: Sequence[str]) -> list[tuple[str, str | int]]:
        query: list[tuple[str, str | int]] = [("depth", self.depth)] if self.depth != DEPTH else []
        query += [("hide", "datasets")] * self.hide_datasets
        query += [("hide", "evaluations")] * self.hide_evaluations
        return query + [("expand", g) for g in expand]

    def expand_link(self, group: str) -> str:
        return f"{self.base}?{urlencode(self._query((*self.expand, group)))}"

    def list_link(self, key: str, after: str) -> str:
        """This page with the list ``key`` (derived_after, consumers_after) from ``after``."""
        return f"{self.base}?{urlencode([*self._query(self.expand), (key, after)])}"


MAX_DEPTH = 100
_HIDDEN = ("datasets", "evaluations")


def _shape(request: Request) -> _Shape:
    """The picture controls a version page was asked for; bad ones are refused (400)."""
    params = request.query_params
    depth = DEPTH
    if "depth" in params:
        text = params["depth"].strip()
        if not text.isdigit() or not 1 <= int(text) <= MAX_DEPTH:
            raise InvalidInput(f"depth must be a whole number from 1 to {MAX_DEPTH}")
        depth = int(text)
    hide = params.getlist("hide")
    unknown = [h for h in hide if h not in _HIDDEN]
    if unknown:
        raise InvalidInput(f"hide takes {' or '.join(_HIDDEN)}, not {unknown[0][:40]!r}")
    expand = tuple(dict.fromkeys(params.getlist("expand")))
    if len(expand) > 50 or any(not g.startswith("more:") or len(g) > 600 for g in expand):
        raise InvalidInput("expand takes at most 50 '+k more' group ids (more:...)")
    derived_after = params.get("derived_after") or None
    if derived_after is not None and len(derived_after) > 2000:
        raise InvalidInput("derived_after takes the cursor of a page of derived versions")
    consumers_after = params.get("consumers_after") or None
    if consumers_after is not None:
        check_name(consumers_after, "consumers_after (a run id)")
    return _Shape(
        depth=depth,
        hide_datasets="datasets" in hide,
        hide_evaluations="evaluations" in hide,
        expand=expand,
        base=request.url.path,
        derived_after=derived_after,
        consumers_after=consumers_after,
    )


def _picture(
    found: View,
    prefix: str,
    shape: _Shape | None = None,
    max_nodes: int = MAX_NODES,
    of: str = "",
) -> _Picture:
    """``of``: ``found`` is a part of a bigger answer, which holds this many (its caption
    says so)."""
    graph = found.graph
    if shape is None:
        plan = build(found, link=_link, max_nodes=max_nodes)
    else:
        plan = build(
            found,
            link=_link,
            hide_datasets=shape.hide_datasets,
            hide_evaluations=shape.hide_evaluations,
            max_nodes=max_nodes,
            expand=shape.expand,
            expand_link=shape.expand_link,
        )
    plan = replace(plan, of=of)
    try:
        svg = render(plan_to_dot(plan), "svg").decode()
    except LineageError as error:  # no Graphviz here: the page still shows everything else
        logger.warning("cannot draw %s: %s", graph.root, error)
        return _Picture(nodes=len(plan.nodes), note=error.message)
    svg = svg[svg.index("<svg") :]
    # two pictures share a page: keep Graphviz's element ids (node1, edge1, ...) unique
    svg = re.sub(r'(\s)id="', rf'\1id="{prefix}-', svg)
    # Graphviz escapes its labels, and they are validated names: safe to insert as markup
    return _Picture(
        svg=Markup(svg),
        nodes=len(plan.nodes),
        groups=len(plan.groups),
        truncated=plan.truncated,
    )


def _tree_picture(
    svc: Service, ref: str, shape: _Shape | None = None, bounds: Bounds = BOUNDS
) -> _Picture:
    """The derivation tree, drawn from at most ``bounds.tree_nodes`` versions: its first
    page (nearest generations first), which is the whole tree when it is small. A bigger
    tree is counted up to ``bounds.count`` and drawn folded, as ``lineage render`` folds."""
    depth = DEPTH if shape is None else shape.depth
    pages = svc.tree_pages(ref, depth, first=min(bounds.tree_nodes, MAX_PAGE))
    graph, more = first_part(pages, bounds.tree_nodes)
    if not graph.edges:
        return _Picture(nodes=len(graph.nodes), note="nothing was derived from this version")
    found = classify(graph, store=svc, mode="tree", depth=depth)
    if not more:
        return _picture(found, "tree", shape)
    # a part of a tree is always folded to a screenful: the reader opens it from the top
    total = svc.tree_count(ref, depth, cap=bounds.count)
    said = f"{bounds.count:,}+" if total > bounds.count else f"{total:,}"
    picture = _picture(found, "tree", shape, min(MAX_NODES, bounds.tree_nodes // 2), said)
    return replace(picture, fetched=len(graph.nodes), total=said)


# what each page shows (run in a worker thread) -----------------------------------------------


def _event_rows(
    events: Sequence[Event], came: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """The rows of an artifact's or a version's event log; ``came``, the OpenLineage
    ``(namespace, name)`` of a dataset, labels its targets by the name as sent."""
    rows = []
    for event in sorted(events, key=lambda e: (e.seq or 0, e.at), reverse=True)[:MAX_ROWS]:
        match = _VERSION_ID.fullmatch(event.target)
        url = None
        if match:
            url = f"/versions/{_part(match[1])}/{_part(match[2])}/{int(match[3])}"
        label = event.target.rpartition("/")[2]  # name[:vN], within its project
        if came is not None:
            label = came[1] + label[len(label.partition(":")[0]) :]
        rows.append({"event": event, "url": url, "label": label})
    return rows


def _index_data(svc: Service, first: str | None = None) -> dict[str, Any]:
    """Every project's artifacts by type; the default project (``first``) before the others,
    even when nothing is recorded in it yet."""
    listed = svc.projects()
    if first is not None:
        listed = [first, *(p for p in listed if p != first)]
    projects: dict[str, dict[str, list[dict[str, Any]]]] = {p: {} for p in listed}
    artifacts = svc.artifacts()
    # each one's count, latest and aliases: one or two store round trips for them all
    summaries = svc.artifact_summaries((a.project, a.name) for a in artifacts)
    for artifact in artifacts:
        count, aliases = summaries.get((artifact.project, artifact.name), (0, []))
        by_type = projects.setdefault(artifact.project, {})
        by_type.setdefault(artifact.type, []).append(
            {
                "artifact": artifact,
                "latest": next((v for alias, v in aliases if alias == "latest"), None),
                "count": count,
                "aliases": [alias for alias, _ in aliases if alias != "latest"],
            }
        )
    # a project of runs alone (an OpenLineage namespace of jobs): how many, and a link to them
    counts = svc.count_project_runs(p for p, types in projects.items() if not types)
    runs_only = {p: (n, "/runs?" + urlencode({"project": p})) for p, n in counts.items()}
    return {
        "projects": {p: dict(sorted(types.items())) for p, types in projects.items()},
        "sent": _sent_projects(svc, projects),
        "runs_only": runs_only,
    }


def _sent_projects(
    svc: Service, projects: Mapping[str, Mapping[str, list[dict[str, Any]]]]
) -> dict[str, str]:
    """Each project's name as sent: the OpenLineage namespace of the datasets listed for it,
    else of its jobs' runs or its first artifact (one store round trip for all the projects
    of runs only, or of nothing listed: the runs page), else the project itself."""
    named: dict[str, str] = {}
    for project, types in projects.items():
        listed = (row["latest"] for rows in types.values() for row in rows)
        for latest in listed:
            came = sent_name(latest.metadata) if latest is not None else None
            if came is not None:
                named[project] = came[0]
                break
    rest = [p for p, types in projects.items() if not types]
    named.update(svc.sent_projects(rest))
    return {p: named.get(p, p) for p in projects}


def _runs_data(svc: Service, query: runlist.RunQuery) -> dict[str, Any]:
    data = runlist.runs_page(svc, query)
    return {**data, "sent": _sent_projects(svc, {p: {} for p in data["projects"]})}


def _artifact_data(svc: Service, project: str, name: str) -> dict[str, Any]:
    artifact = svc.get_artifact(project, name)
    shown = svc.versions(project, name, include_deleted=True, limit=MAX_ROWS, newest_first=True)
    total = svc.count_versions(project, name, include_deleted=True)
    runs = svc.get_runs({v.created_by for v in shown if v.created_by})
    events = svc.events(f"{project}/{name}")
    came = sent_name(shown[0].metadata) if shown else None
    return {
        "artifact": artifact,
        "times": artifact_times(svc, artifact),  # (created, stored)
        "sent": came,
        "description": _own_description(svc, artifact, events),
        "versions": shown,
        "more_versions": total - len(shown),
        "runs": runs,
        "events": _event_rows(events, came),
    }


def _own_description(svc: Service, artifact: ArtifactRecord, events: Sequence[Event]) -> str | None:
    """The artifact's own description: the store gives a new artifact the description its
    first version was logged with, which describes that version, not the artifact."""
    if not artifact.description:
        return None
    first = svc.versions(artifact.project, artifact.name, include_deleted=True, limit=1)
    if not first:
        return artifact.description
    logged = first[0].description  # what v0 says now; what it said at first, if edited since
    for event in sorted(events, key=lambda e: (e.seq or 0, e.at)):
        if event.kind == "description.updated" and event.target == first[0].id:
            logged = event.old
            break
    return None if artifact.description == logged else artifact.description


def _alias_history(version: VersionRecord, events: Sequence[Event]) -> list[dict[str, Any]]:
    """Every alias that names this version now or did once, with each of its moves."""
    moves: dict[str, list[dict[str, Any]]] = {}
    for event in sorted(events, key=lambda e: (e.seq or 0, e.at)):
        if event.kind not in ("alias.moved", "alias.removed"):
            continue
        change = event.new if event.kind == "alias.moved" else event.old
        if not isinstance(change, Mapping) or not isinstance(change.get("alias"), str):
            continue
        old = event.old.get("version") if isinstance(event.old, Mapping) else None
        new = event.new.get("version") if event.kind == "alias.moved" else None
        moves.setdefault(change["alias"], []).append(
            {"at": event.at, "actor": event.actor, "old": old, "new": new}
        )
    here = f"v{version.index}"
    rows = []
    for alias in sorted(set(version.aliases) | set(moves)):
        history = moves.get(alias, [])
        if alias in version.aliases or any(here in (m["old"], m["new"]) for m in history):
            rows.append(
                {"alias": alias, "current": alias in version.aliases, "moves": history[::-1]}
            )
    return rows


def _derived(svc: Service, ref: str, shape: _Shape, bounds: Bounds) -> dict[str, Any]:
    """One page of the versions derived from ``ref``, by generation, from the cursor in the
    query string: each with its state, and the version and run it was derived from."""
    page = svc.tree_page(ref, shape.depth, first=bounds.rows, after=shape.derived_after)
    states = page_states(page.nodes, page.cut, svc)
    made: dict[str, tuple[str, str | None]] = {}
    for edge in page.edges:
        made.setdefault(edge.target, (edge.source, edge.run))
    runs = svc.get_runs({run for _, run in made.values() if run})
    rows = [
        {
            "version": node.version,
            "state": states[node.id].replace("_", " "),
            "parent": made.get(node.id, (None, None))[0],
            "run": runs.get(made.get(node.id, (None, None))[1] or ""),
        }
        for node in page.nodes
        if node.version is not None and node.id != page.root
    ]
    following = None
    if page.has_next and page.end_cursor is not None:
        following = shape.list_link("derived_after", page.end_cursor) + "#derived"
    return {"rows": rows, "next": following, "first": shape.derived_after is None}


def _consumers(
    svc: Service, version: VersionRecord, shape: _Shape, bounds: Bounds
) -> dict[str, Any]:
    runs, total = svc.consumer_page(version, first=bounds.rows, after=shape.consumers_after)
    following = None
    if runs and len(runs) == bounds.rows:
        following = shape.list_link("consumers_after", runs[-1].id) + "#consumers"
    return {"runs": runs, "total": total, "next": following, "first": shape.consumers_after is None}


def _version_data(
    svc: Service,
    project: str,
    name: str,
    index: int,
    shape: _Shape | None = None,
    bounds: Bounds = BOUNDS,
) -> dict[str, Any]:
    shape = shape or _Shape()
    ref = version_id(check_name(project, "project"), check_name(name, "artifact name"), index)
    version = svc.resolve(ref, include_deleted=True)  # a deleted version's lineage stays
    files, elsewhere = _files(svc, version)
    return {
        "version": version,
        "files_elsewhere": elsewhere,
        "alias_rows": _alias_history(version, svc.events(f"{project}/{name}")),
        "files": files[:MAX_ROWS],
        "more_files": len(files) - min(len(files), MAX_ROWS),
        "producers": svc.producers(version),
        "consumers": _consumers(svc, version, shape, bounds),
        "events": _event_rows(svc.events(ref), sent_name(version.metadata)),
        "lineage": _picture(
            classify(
                svc.lineage(ref, "upstream", shape.depth),
                store=svc,
                mode="upstream",
                depth=shape.depth,
            ),
            "lineage",
            shape,
        ),
        "tree": _tree_picture(svc, ref, shape, bounds),
        "derived": _derived(svc, ref, shape, bounds),
        "depth": shape.depth,
        "shape": shape,
        "max_depth": MAX_DEPTH,
    }


def _files(svc: Service, version: VersionRecord) -> tuple[list[Entry], str | None]:
    """The version's files, or why this server cannot list them: its blob store is not the
    one that holds them (a graph pushed without ``--to-blobs``); the lineage is still shown."""
    if version.state != "committed":
        return [], None
    try:
        return list(svc.manifest(version)), None
    except BlobNotFound:
        return [], (
            f"manifest {version.digest} is not in {svc.blobs.url}: this server reads another "
            "blob store than the one holding these files (its --blobs)"
        )


def _run_data(svc: Service, run_id: str) -> dict[str, Any]:
    run = svc.get_run(check_name(run_id, "run id"))
    inputs, outputs = svc.run_io(run.id)
    return {
        "run": run,
        # a parent run that only a child's parent facet named, no event of its own, is not
        # recorded: shown by its job as sent, not linked to a page that does not exist
        "parent": svc.get_runs([run.parent]).get(run.parent) if run.parent else None,
        "parent_job": _parent_job(run),
        "children": svc.child_runs(run.id),
        "inputs": inputs,
        "outputs": outputs,
        "graph": _picture(
            classify(svc.lineage(run.id, "both", 1), store=svc, mode="both", depth=1), "run"
        ),
    }


def _parent_job(run: RunRecord) -> str | None:
    """The job of a run's OpenLineage parent facet, as sent: ``airflow://prod/nightly``."""
    facets = (run.facets or {}).get("run")
    parent = facets.get("parent") if isinstance(facets, Mapping) else None
    job = parent.get("job") if isinstance(parent, Mapping) else None
    if isinstance(job, Mapping):
        namespace, name = job.get("namespace"), job.get("name")
        if isinstance(namespace, str) and isinstance(name, str):
            return sent.joined(namespace, name)
    return None


# pages ---------------------------------------------------------------------------------------


def _render(
    request: Request, template: str, context: Mapping[str, Any], status_code: int = 200
) -> Response:
    nonce = secrets.token_urlsafe(16)
    who: Principal | None = getattr(request.state, "who", None)
    signed_in = who.token if who is not None and COOKIE in request.cookies else None
    response = _templates.TemplateResponse(
        request,
        template,
        {"q": "", "signed_in": signed_in, **context, "nonce": nonce},
        status_code=status_code,
        headers={
            "Content-Security-Policy": _CSP.format(nonce=nonce),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Cache-Control": "no-cache",
        },
    )
    return response


def _error(request: Request, error: LineageError) -> Response:
    status = STATUS.get(error.code, 500)
    logger.info("%s %s refused (%s): %s", request.method, request.url.path, error.code, error)
    response = _render(
        request,
        "error.html",
        {"status": status, "code": error.code, "message": error.message},
        status,
    )
    if error.code == "UNAUTHENTICATED":
        response.headers["WWW-Authenticate"] = "Bearer"
        if COOKIE in request.cookies:  # a revoked token: the browser forgets it
            response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _page(endpoint: Endpoint) -> Endpoint:
    """Refusals become an error page with the service's message and the matching status."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except LineageError as error:
            return _error(request, error)

    return guarded


async def _reader(request: Request) -> Service:
    who = await principal(request, cookie=True)
    request.state.who = who
    who.require("read")
    return service(request)


@_page
async def _index(request: Request) -> Response:
    svc = await _reader(request)
    first = default_project(request)
    return _render(request, "index.html", await call(_index_data, svc, first))


def _search(bounds: Bounds) -> Endpoint:
    @_page
    async def search(request: Request) -> Response:
        svc = await _reader(request)
        q = request.query_params.get("q", "").strip()
        if len(q) > MAX_QUERY:
            raise InvalidInput(f"a search is at most {MAX_QUERY} characters, got {len(q)}")
        data = await call(find, svc, q, bounds.scan) if q else {}
        return _render(request, "search.html", {"q": q, **data})

    return search


@_page
async def _runs(request: Request) -> Response:
    svc = await _reader(request)
    params = request.query_params
    query = runlist.parse_query(params.get, params.getlist)
    data = await call(_runs_data, svc, query)
    return _render(request, "runs.html", {"query": query, **data})


@_page
async def _compare(request: Request) -> Response:
    svc = await _reader(request)
    ids = [i.strip() for i in request.query_params.getlist("run") if i.strip()]
    return _render(request, "compare.html", await call(runlist.compare, svc, ids))


def _diff_data(svc: Service, a: str, b: str) -> dict[str, Any]:
    """Why two versions (or runs) differ: the text `lineage diff` prints, and both upstreams
    in one picture (shared grey, A-only and B-only coloured)."""
    from lineage.cli.diff import diff_lines
    from lineage.diff import DEPTH as DIFF_DEPTH
    from lineage.diff import diff
    from lineage.render_diff import diff_dot

    project = a.partition("/")[0] if "/" in a.partition(":")[0] else None  # b may omit it
    found = diff(svc, a, b, default_project=project)
    assert found.upstreams is not None
    views = [
        classify(graph, store=svc, mode="upstream", depth=DIFF_DEPTH) for graph in found.upstreams
    ]
    try:
        svg = render(diff_dot(views[0], views[1]), "svg").decode()
        picture: Markup | None = Markup(svg[svg.index("<svg") :])
        note = None
    except LineageError as error:  # no Graphviz here: the text still says it all
        picture, note = None, error.message
    sides = (("A", found.a), ("B", found.b))
    unlisted = [f"{letter} {side.id}" for letter, side in sides if side.id in found.unlisted]
    return {
        "a": a,
        "b": b,
        "lines": diff_lines(found),
        "svg": picture,
        "note": note,
        "unlisted": unlisted,
    }


@_page
async def _diff(request: Request) -> Response:
    svc = await _reader(request)
    a = request.query_params.get("a", "").strip()
    b = request.query_params.get("b", "").strip()
    if not a or not b:
        raise InvalidInput("compare takes two refs or run ids: ?a=REF&b=REF", argument="b")
    for name, value in (("a", a), ("b", b)):
        check_text(value, name)
        if len(value) > 1000:
            raise InvalidInput(f"{name} is not a ref: {len(value):,} characters", argument=name)
    return _render(request, "diff.html", await call(_diff_data, svc, a, b))


@_page
async def _file(request: Request) -> Response:
    """One file of a version, streamed from the blob store and hashed on the way: the last
    piece leaves only once the bytes match the manifest's digest, so a client never gets a
    whole file that is wrong (a mismatch cuts the response short of its Content-Length)."""
    svc = await _reader(request)
    params = request.path_params
    ref = version_id(
        check_name(params["project"], "project"),
        check_name(params["name"], "artifact name"),
        params["index"],
    )
    path = params["path"]

    def entry() -> tuple[VersionRecord, Any]:
        version = svc.resolve(ref)
        for found in svc.manifest(version):
            if found.path == path:
                return version, found
        raise NotFound(f"{version.ref} has no file {path!r}", ref=version.ref)

    version, found = await call(entry)
    if found.digest is None:
        raise InvalidInput(
            f"{path!r} of {version.ref} is a reference to {found.uri}: its bytes are not "
            "in this store"
        )
    digest: str = found.digest
    stream = await call(svc.blobs.open, digest)

    def chunks() -> Iterator[bytes]:
        hasher, held = Hasher(), b""
        with stream:
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)
                if held:
                    yield held
                held = chunk
        if hasher.hexdigest() != digest:
            logger.error("%s of %s does not match its digest %s", path, version.ref, digest)
            raise DigestMismatch(f"{path} of {version.ref} does not match its digest")
        if held:
            yield held

    name = path.rpartition("/")[2]
    headers = {
        "Content-Length": str(found.size),
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }
    return StreamingResponse(chunks(), media_type="application/octet-stream", headers=headers)


# signing in ----------------------------------------------------------------------------------


def _next(target: object) -> str:
    """Where to go after signing in: a path of this server, never another site."""
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and len(target) <= 2048
    ):
        return target
    return "/"


async def _signin_form(request: Request) -> Response:
    return _render(request, "signin.html", {"next": _next(request.query_params.get("next"))})


async def _signin(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=4)
    target = _next(form.get("next"))
    token = form.get("token")
    token = token.strip() if isinstance(token, str) else ""
    gate = Gate(service(request).graph)
    if not same_origin(request.headers, request.url.scheme, strict=True):
        message = "sign-in refused: the form was not sent from this server's own page"
        status = 403
    elif not token:
        message, status = "type a token (lin_…) to sign in", 400
    else:
        who = await call(gate.identify, {"authorization": f"Bearer {token}"}, None, None)
        if who.scope is not None:
            logger.info("token %s signed in", who.token)
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(
                COOKIE,
                token,
                max_age=MAX_AGE,
                path="/",
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
            return response
        message = (
            "sign-in refused: that token is unknown or revoked"
            if who.reason.endswith("unknown or revoked")
            else "sign-in refused: that is not a lineage token (lin_<id>_<64 hex characters>)"
        )
        status = 401
    logger.info("sign-in refused (%s)", status)
    return _render(request, "signin.html", {"next": target, "error": message}, status)


async def _signout(request: Request) -> Response:
    if not same_origin(request.headers, request.url.scheme, strict=True):
        return _error(request, InvalidInput("sign-out must come from this server's own page"))
    response = RedirectResponse("/signin?out=1", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


_STATIC = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    body = (importlib.resources.files("lineage.server") / "static" / name).read_bytes()
    return Response(
        body,
        media_type=_STATIC[name],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


@_page
async def _artifact(request: Request) -> Response:
    svc = await _reader(request)
    params = request.path_params
    data = await call(_artifact_data, svc, params["project"], params["name"])
    return _render(request, "artifact.html", data)


def _version(bounds: Bounds) -> Endpoint:
    @_page
    async def version(request: Request) -> Response:
        svc = await _reader(request)
        params = request.path_params
        shape = _shape(request)
        data = await call(
            _version_data, svc, params["project"], params["name"], params["index"], shape, bounds
        )
        return _render(request, "version.html", data)

    return version


async def _writer(request: Request, form: FormData) -> Principal:
    """The caller, by its Authorization header, else by the token typed into the form."""
    token = form.get("token")
    if "authorization" in request.headers or not isinstance(token, str) or not token.strip():
        return await principal(request)
    gate = Gate(service(request).graph)
    client = request.client.host if request.client else None
    headers = {"authorization": f"Bearer {token.strip()}"}
    return await call(gate.identify, headers, client, request.headers.get("host"))


def _edit(bounds: Bounds) -> Endpoint:
    @_page
    async def edit(request: Request) -> Response:
        return await _edited(request, bounds)

    return edit


async def _edited(request: Request, bounds: Bounds) -> Response:
    svc = service(request)
    params = request.path_params
    form = await request.form(max_files=0, max_fields=8)
    description = form.get("description")
    try:
        who = await _writer(request, form)
        who.require("write")
        if not isinstance(description, str):
            raise InvalidInput("the form needs a 'description' field")
        ref = version_id(
            check_name(params["project"], "project"),
            check_name(params["name"], "artifact name"),
            params["index"],
        )
        version = await call(
            svc.update_version,
            ref,
            description=description.replace("\r\n", "\n"),
            actor=who.actor,
        )
    except LineageError as error:
        # show the page again, with the reason and with what was typed, and change nothing
        await _reader(request)
        data = await call(
            _version_data, svc, params["project"], params["name"], params["index"], None, bounds
        )
        data["edit_error"] = error.message
        data["draft"] = description if isinstance(description, str) else None
        return _render(request, "version.html", data, STATUS.get(error.code, 500))
    logger.info("notes of %s updated by %s", version.ref, who.actor)
    return RedirectResponse(version_url(version) + "#notes", status_code=303)


@_page
async def _run(request: Request) -> Response:
    svc = await _reader(request)
    return _render(request, "run.html", await call(_run_data, svc, request.path_params["run_id"]))


def routes(bounds: Bounds = BOUNDS) -> list[BaseRoute]:
    """The dashboard's routes, for :func:`lineage.server.app.create_app` (``extra_routes``);
    ``bounds``: how much of a big answer a page reads (:class:`Bounds`)."""
    version = "/versions/{project}/{name}/{index:int}"
    return [
        Route("/", _index, methods=["GET"]),
        Route("/search", _search(bounds), methods=["GET"]),
        Route("/runs", _runs, methods=["GET"]),
        Route("/compare", _compare, methods=["GET"]),
        Route("/diff", _diff, methods=["GET"]),
        Route(version + "/files/{path:path}", _file, methods=["GET"]),
        Route("/signin", _signin_form, methods=["GET"]),
        Route("/signin", _signin, methods=["POST"], max_body_size=64 * 1024),
        Route("/signout", _signout, methods=["POST"], max_body_size=64 * 1024),
        Route("/static/{name}", _static, methods=["GET"]),
        Route("/artifacts/{project}/{name}", _artifact, methods=["GET"]),
        Route(version, _version(bounds), methods=["GET"]),
        Route(version, _edit(bounds), methods=["POST"], max_body_size=MAX_FORM),
        Route("/runs/{run_id}", _run, methods=["GET"]),
    ]
