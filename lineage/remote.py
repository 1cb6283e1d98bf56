"""The SDK against a lineage server: a service with the same methods as the local one.

:class:`RemoteService` turns each call the SDK, the CLI and :class:`lineage.Api` make into
one GraphQL request; the server's service layer applies every rule, so a remote refusal is
the same error, raised here from its ``extensions.code``. Blobs travel through
:class:`lineage.storage.http.HttpBlobStore`; a version is committed only after its blobs
and manifest are on the server.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from lineage import errors
from lineage.cursors import cursor as make_cursor
from lineage.errors import InvalidInput, LineageError, StoreUnavailable
from lineage.manifest import Manifest, read_manifest
from lineage.names import Ref, parse_ref
from lineage.records import (
    ArtifactRecord,
    CodeVersion,
    Edge,
    Event,
    Node,
    RunRecord,
    Subgraph,
    VersionRecord,
)
from lineage.service import GcReport, new_run_id, process_alive
from lineage.storage.graph import GraphStore
from lineage.storage.http import HttpBlobStore

__all__ = ["RemoteService"]

logger = logging.getLogger(__name__)

# aliased fields per request: under the server's default MaxAliasesLimiter (50)
_BATCH = 40
# a request is tried this often, 0.2 s after the first failure, doubling: 6.2 s in all, as a
# blob upload is (HttpBlobStore), so that a commit rides out what its uploads rode out
_ATTEMPTS = 6

_CODES: dict[str, type[LineageError]] = {
    "INVALID_INPUT": errors.InvalidInput,
    "NOT_FOUND": errors.NotFound,
    "CONFLICT": errors.Conflict,
    "DATA_LOSS": errors.IntegrityError,
    "UNAVAILABLE": errors.StoreUnavailable,
    "UNAUTHENTICATED": errors.Unauthenticated,
    "FORBIDDEN": errors.Forbidden,
}
_BY_NAME: dict[str, type[LineageError]] = {
    name: getattr(errors, name) for name in errors.__all__ if name != "LineageError"
}

RUN = """id project name jobType state config summary tags notes host startedAt finishedAt
error code { commit dirty remote }"""
VERSION = """project name type index digest size fileCount metadata description aliases state
createdAt createdBy { id }"""
GRAPH = f"""nodes {{ id kind ref run {{ {RUN} }} artifactVersion {{ {VERSION} }} }}
edges {{ source target kind run {{ id }} }} truncated root"""


def _time(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def _run(data: Mapping[str, Any]) -> RunRecord:
    code = data.get("code")
    return RunRecord(
        id=data["id"],
        project=data["project"],
        name=data["name"],
        job_type=data.get("jobType"),
        state=str(data["state"]).lower(),
        config=data.get("config") or {},
        summary=data.get("summary") or {},
        tags=tuple(data.get("tags") or ()),
        notes=data.get("notes"),
        code=CodeVersion(**code) if code else None,
        host=data.get("host"),
        started_at=_time(data["startedAt"]) or 0.0,
        finished_at=_time(data.get("finishedAt")),
        error=data.get("error"),
    )


def _version(data: Mapping[str, Any]) -> VersionRecord:
    created_by = data.get("createdBy")
    return VersionRecord(
        project=data["project"],
        name=data["name"],
        type=data["type"],
        index=data["index"],
        digest=data["digest"],
        size=data["size"],
        file_count=data["fileCount"],
        metadata=data.get("metadata") or {},
        description=data.get("description"),
        aliases=tuple(sorted(data.get("aliases") or ())),
        created_by=created_by["id"] if created_by else None,
        created_at=_time(data["createdAt"]) or 0.0,
        state=str(data["state"]).lower(),
    )


def _event(data: Mapping[str, Any]) -> Event:
    return Event(
        project=data["target"].split("/", 1)[0],
        target=data["target"],
        kind=data["kind"],
        at=_time(data["at"]) or 0.0,
        actor=data.get("actor"),
        old=data.get("old"),
        new=data.get("new"),
        seq=data.get("seq"),
    )


def _graph(data: Mapping[str, Any]) -> Subgraph:
    nodes = []
    for node in data["nodes"]:
        run = node.get("run")
        version = node.get("artifactVersion")
        nodes.append(
            Node(
                id=node["id"],
                kind="run" if node["kind"] == "RUN" else "artifact_version",
                ref=node.get("ref"),
                run=_run(run) if run else None,
                version=_version(version) if version else None,
            )
        )
    edges = [
        Edge(
            source=edge["source"],
            target=edge["target"],
            kind=str(edge["kind"]).lower(),
            run=(edge.get("run") or {}).get("id") if edge["kind"] == "DERIVED" else None,
        )
        for edge in data["edges"]
    ]
    return Subgraph(
        nodes=tuple(nodes), edges=tuple(edges), truncated=data["truncated"], root=data.get("root")
    )


class RemoteService:
    """What :class:`lineage.service.Service` offers, over a lineage server's GraphQL API."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = 60.0,
        mirror: GraphStore | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        # versions resolved online are remembered locally, so that a run logged offline later
        # can consume them and `lineage sync` can send that edge
        self.mirror = mirror
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0)
        )
        self.blobs = HttpBlobStore(self.url, token=token)
        self.requests = 0  # GraphQL requests made: what a second sync must not repeat
        self.retried = 0  # requests sent again after a failure (the first may have landed)
        self._ping()

    def close(self) -> None:
        self._http.close()
        self.blobs.close()
        if self.mirror is not None:
            self.mirror.close()

    def _ping(self) -> None:
        try:
            response = self._http.get("/healthz")
        except httpx.TransportError as exc:
            raise StoreUnavailable(
                f"cannot reach the lineage server at {self.url}: {exc}", url=self.url
            ) from None
        if response.status_code != 200:
            raise StoreUnavailable(
                f"lineage server at {self.url} is not healthy (HTTP {response.status_code})",
                url=self.url,
            )

    def query(self, document: str, *, missing_ok: bool = False, **variables: Any) -> Any:
        """The data of one GraphQL request; with ``missing_ok``, NOT_FOUND fields are None."""
        self.requests += 1
        delay = 0.2
        for attempt in range(_ATTEMPTS):
            last = attempt == _ATTEMPTS - 1
            try:
                response = self._http.post(
                    "/graphql", json={"query": document, "variables": variables}
                )
            except httpx.TransportError as exc:
                if last:
                    raise StoreUnavailable(
                        f"lineage server {self.url} unreachable: {exc}", url=self.url
                    ) from None
            else:
                if response.status_code not in (502, 503, 504):
                    break
                if last:
                    raise StoreUnavailable(
                        f"lineage server {self.url} answered HTTP {response.status_code} "
                        f"{_ATTEMPTS} times",
                        url=self.url,
                    )
            self.retried += 1
            time.sleep(delay)
            delay *= 2
        if response.status_code in (401, 403) and not response.content.startswith(b"{"):
            raise errors.Unauthenticated(f"{self.url}: HTTP {response.status_code}")
        body = response.json()
        errors_ = body.get("errors") or []
        if missing_ok and body.get("data") is not None:
            errors_ = [e for e in errors_ if (e.get("extensions") or {}).get("code") != "NOT_FOUND"]
        if errors_:
            raise _error(errors_[0])
        return body["data"]

    # runs ----------------------------------------------------------------------------------

    def start_run(self, *, project: str, code: CodeVersion | None = None, **kw: Any) -> RunRecord:
        variables: dict[str, Any] = {
            "project": project,
            "jobType": kw.get("job_type"),
            "name": kw.get("name"),
            "config": dict(kw.get("config") or {}),
            "tags": list(kw.get("tags") or ()),
            "notes": kw.get("notes"),
            "host": kw.get("host"),
            "pid": kw.get("pid"),
            "code": None
            if code is None
            else {"commit": code.commit, "dirty": code.dirty, "remote": code.remote},
            # named here, not by the server: a retry of a request whose answer was lost
            # then finds this run instead of starting a second one
            "id": kw.get("run_id") or new_run_id(),
            "startedAt": None
            if kw.get("started_at") is None
            else datetime.fromtimestamp(kw["started_at"], tz=UTC).isoformat(),
        }
        retried = self.retried
        try:
            data = self.query(
                "mutation($project: String!, $jobType: String, $name: String, $config: JSON,"
                " $tags: [String!], $notes: String, $host: String, $pid: Int,"
                " $code: CodeVersionInput, $id: ID, $startedAt: DateTime) {"
                " createRun(project: $project, jobType: $jobType, name: $name, config: $config,"
                " tags: $tags, notes: $notes, host: $host, pid: $pid, code: $code, id: $id,"
                f" startedAt: $startedAt) {{ {RUN} }} }}",
                **variables,
            )
        except errors.Conflict:
            if kw.get("run_id") or self.retried == retried:
                raise  # the id was the caller's, or no earlier attempt can have used it
            return self.get_run(variables["id"])  # an attempt whose answer was lost made it
        return _run(data["createRun"])

    def get_run(self, run_id: str) -> RunRecord:
        data = self.query(f"query($id: ID!) {{ run(id: $id) {{ {RUN} }} }}", id=run_id)
        if data["run"] is None:
            raise errors.RunNotFound(f"run {run_id!r} does not exist", run_id=run_id)
        return _run(data["run"])

    def get_runs(self, ids: Iterable[str]) -> dict[str, RunRecord]:
        """Many runs, a batch of aliased fields per request (never a request per run)."""
        found = {}
        for key, data in self._batch(sorted(set(ids)), "run(id: {})", RUN, "ID!").items():
            if data is not None:
                found[key] = _run(data)
        return found

    def _batch(self, keys: Sequence[str], field: str, selection: str, kind: str) -> dict[str, Any]:
        """One GraphQL field per key, up to the server's alias limit in each request."""
        answers: dict[str, Any] = {}
        for start in range(0, len(keys), _BATCH):
            chunk = keys[start : start + _BATCH]
            params = ", ".join(f"$k{i}: {kind}" for i in range(len(chunk)))
            fields = " ".join(
                f"a{i}: {field.format(f'$k{i}')} {{ {selection} }}" for i in range(len(chunk))
            )
            data = self.query(
                f"query({params}) {{ {fields} }}",
                missing_ok=True,
                **{f"k{i}": k for i, k in enumerate(chunk)},
            )
            answers.update((k, data.get(f"a{i}")) for i, k in enumerate(chunk))
        return answers

    def finish_run(
        self,
        run_id: str,
        *,
        state: str = "finished",
        summary: Mapping[str, Any] | None = None,
        error: str | None = None,
        at: float | None = None,
    ) -> RunRecord:
        retried = self.retried
        try:
            data = self.query(
                "mutation($id: ID!, $state: RunState!, $summary: JSON, $error: String) {"
                " finishRun(runId: $id, state: $state, summary: $summary, error: $error)"
                f" {{ {RUN} }} }}",
                id=run_id,
                state=state.upper(),
                summary=dict(summary) if summary is not None else None,
                error=error,
            )
        except errors.Conflict:
            if self.retried == retried:
                raise
            run = self.get_run(run_id)  # an attempt whose answer was lost may have finished it
            if run.state != state:
                raise
            return run
        return _run(data["finishRun"])

    def update_summary(self, run_id: str, summary: Mapping[str, Any]) -> RunRecord:
        data = self.query(
            f"mutation($id: ID!, $s: JSON!) {{ logSummary(runId: $id, summary: $s) {{ {RUN} }} }}",
            id=run_id,
            s=dict(summary),
        )
        return _run(data["logSummary"])

    def reap_stale(self, project: str | None = None) -> list[RunRecord]:
        """Runs of this host whose process died: the server cannot see local processes."""
        host = socket.gethostname()
        reaped = []
        projects = [project] if project else self.projects()
        for name in projects:
            for run in self.runs(name, state="running"):
                if run.host == host and run.pid is not None and not process_alive(run.pid):
                    reaped.append(self.finish_run(run.id, state="crashed", error="process exited"))
        return reaped

    def runs(
        self,
        project: str | None = None,
        *,
        job_type: str | None = None,
        state: str | None = None,
        limit: int | None = None,
        after: tuple[float, str] | None = None,
    ) -> list[RunRecord]:
        if project is None:
            return [
                r for p in self.projects() for r in self.runs(p, job_type=job_type, state=state)
            ]
        found: list[RunRecord] = []
        # The server's cursor for a run is made from its sort key, (started_at, id); but times
        # reach a client to the microsecond (GraphQL DateTime) and the server keeps them to the
        # float. So ask from a microsecond earlier, and drop what is not after ``after`` as
        # this client sees times.
        cursor = None if after is None else make_cursor([float(after[0]) - 1e-6, after[1]])
        while True:
            data = self.query(
                "query($p: String!, $j: String, $s: RunState, $after: String) {"
                " runs(project: $p, jobType: $j, state: $s, first: 500, after: $after) {"
                f" nodes {{ {RUN} }} pageInfo {{ hasNextPage endCursor }} }} }}",
                p=project,
                j=job_type,
                s=state.upper() if state else None,
                after=cursor,
            )
            runs = [_run(node) for node in data["runs"]["nodes"]]
            found += runs if after is None else [r for r in runs if (r.started_at, r.id) > after]
            page = data["runs"]["pageInfo"]
            if not page["hasNextPage"] or (limit is not None and len(found) >= limit):
                return found[:limit] if limit is not None else found
            cursor = page["endCursor"]

    def projects(self) -> list[str]:
        return [p["name"] for p in self.query("{ projects { name } }")["projects"]]

    # versions ------------------------------------------------------------------------------

    def resolve(
        self, ref: str | Ref, default_project: str | None = None, *, include_deleted: bool = False
    ) -> VersionRecord:
        parsed = ref if isinstance(ref, Ref) else parse_ref(ref, default_project)
        data = self.query(
            f"query($ref: String!) {{ artifactVersion(ref: $ref) {{ {VERSION} }} }}",
            ref=str(parsed),
        )
        if data["artifactVersion"] is None:
            raise errors.VersionNotFound(f"{parsed} does not exist", ref=str(parsed))
        return self._remember(_version(data["artifactVersion"]))

    def _remember(self, version: VersionRecord) -> VersionRecord:
        if self.mirror is not None:
            try:
                self.mirror.import_records(
                    artifacts=[
                        ArtifactRecord(
                            project=version.project, name=version.name, type=version.type
                        )
                    ],
                    versions=[replace(version, aliases=())],
                )
            except LineageError as exc:  # the mirror is a convenience, never a failure
                logger.warning("could not remember %s locally: %s", version.ref, exc)
        return version

    def use(self, run_id: str, ref: str | Ref) -> VersionRecord:
        data = self.query(
            "mutation($id: ID!, $ref: String!) { useArtifact(runId: $id, ref: $ref)"
            f" {{ {VERSION} }} }}",
            id=run_id,
            ref=str(ref),
        )
        return self._remember(_version(data["useArtifact"]))

    def commit(
        self,
        run_id: str,
        *,
        name: str,
        type: str,
        manifest: str,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
    ) -> tuple[VersionRecord, bool]:
        data = self.query(
            "mutation($id: ID!, $name: String!, $type: String!, $manifest: String!,"
            " $description: String, $metadata: JSON, $aliases: [String!]) {"
            " commitVersion(runId: $id, name: $name, type: $type, manifest: $manifest,"
            " description: $description, metadata: $metadata, aliases: $aliases) {"
            f" created version {{ {VERSION} }} }} }}",
            id=run_id,
            name=name,
            type=type,
            manifest=manifest,
            description=description,
            metadata=dict(metadata or {}),
            aliases=list(aliases),
        )
        result = data["commitVersion"]
        return _version(result["version"]), bool(result["created"])

    def set_alias(self, ref: str, alias: str, *, actor: str | None = None) -> VersionRecord:
        data = self.query(
            "mutation($ref: String!, $alias: String!) { setAlias(ref: $ref, alias: $alias)"
            f" {{ {VERSION} }} }}",
            ref=ref,
            alias=alias,
        )
        return _version(data["setAlias"])

    def remove_alias(
        self, project: str, name: str, alias: str, *, actor: str | None = None
    ) -> None:
        self.query(
            "mutation($p: String!, $n: String!, $a: String!) {"
            " removeAlias(project: $p, name: $n, alias: $a) { name } }",
            p=project,
            n=name,
            a=alias,
        )

    def update_version(
        self,
        ref: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        description: str | None = None,
        actor: str | None = None,
    ) -> VersionRecord:
        data = self.query(
            "mutation($ref: String!, $m: JSON, $d: String) {"
            f" updateVersion(ref: $ref, metadata: $m, description: $d) {{ {VERSION} }} }}",
            ref=ref,
            m=dict(metadata) if metadata is not None else None,
            d=description,
        )
        return _version(data["updateVersion"])

    def delete_version(
        self, ref: str, *, force: bool = False, actor: str | None = None
    ) -> VersionRecord:
        data = self.query(
            "mutation($ref: String!, $force: Boolean!) { deleteVersion(ref: $ref, force: $force)"
            f" {{ {VERSION} }} }}",
            ref=ref,
            force=force,
        )
        return _version(data["deleteVersion"])

    def events(self, ref: str, default_project: str | None = None) -> list[Event]:
        parsed = parse_ref(ref, default_project)
        if ":" in ref:
            data = self.query(
                "query($ref: String!) { artifactVersion(ref: $ref) {"
                " events { seq kind target at actor old new } } }",
                ref=str(parsed),
            )
            holder = data["artifactVersion"]
        else:
            data = self.query(
                "query($p: String!, $n: String!) { artifact(project: $p, name: $n) {"
                " events { seq kind target at actor old new } } }",
                p=parsed.project,
                n=parsed.name,
            )
            holder = data["artifact"]
        if holder is None:
            raise errors.VersionNotFound(f"{parsed} does not exist", ref=str(parsed))
        return [_event(e) for e in holder["events"]]

    def manifest(self, version: VersionRecord) -> Manifest:
        return read_manifest(self.blobs, version.digest)

    def artifacts(
        self, project: str | None = None, *, type: str | None = None
    ) -> list[ArtifactRecord]:
        if project is None:
            return [a for p in self.projects() for a in self.artifacts(p, type=type)]
        found: list[ArtifactRecord] = []
        cursor = None
        while True:
            data = self.query(
                "query($p: String!, $t: String, $after: String) {"
                " artifacts(project: $p, type: $t, first: 500, after: $after) {"
                " nodes { project name type description createdAt }"
                " pageInfo { hasNextPage endCursor } } }",
                p=project,
                t=type,
                after=cursor,
            )
            for node in data["artifacts"]["nodes"]:
                found.append(
                    ArtifactRecord(
                        project=node["project"],
                        name=node["name"],
                        type=node["type"],
                        description=node.get("description"),
                        created_at=_time(node["createdAt"]) or 0.0,
                    )
                )
            page = data["artifacts"]["pageInfo"]
            if not page["hasNextPage"]:
                return found
            cursor = page["endCursor"]

    def versions(
        self, project: str, name: str, *, include_deleted: bool = False
    ) -> list[VersionRecord]:
        found: list[VersionRecord] = []
        cursor = None
        while True:
            data = self.query(
                "query($p: String!, $n: String!, $d: Boolean!, $after: String) {"
                " artifact(project: $p, name: $n) { versions(first: 500, after: $after,"
                f" includeDeleted: $d) {{ nodes {{ {VERSION} }}"
                " pageInfo { hasNextPage endCursor } } } }",
                p=project,
                n=name,
                d=include_deleted,
                after=cursor,
            )
            if data["artifact"] is None:
                return found
            connection = data["artifact"]["versions"]
            found += [_version(node) for node in connection["nodes"]]
            if not connection["pageInfo"]["hasNextPage"]:
                return found
            cursor = connection["pageInfo"]["endCursor"]

    def producers(self, version: VersionRecord) -> list[RunRecord]:
        data = self.query(
            f"query($ref: String!) {{ artifactVersion(ref: $ref) {{ loggedBy {{ {RUN} }} }} }}",
            ref=version.ref,
        )
        return [_run(r) for r in (data["artifactVersion"] or {}).get("loggedBy", [])]

    def consumers(self, version: VersionRecord) -> list[RunRecord]:
        data = self.query(
            f"query($ref: String!) {{ artifactVersion(ref: $ref) {{ usedBy {{ {RUN} }} }} }}",
            ref=version.ref,
        )
        return [_run(r) for r in (data["artifactVersion"] or {}).get("usedBy", [])]

    def consumed(self, ids: Sequence[str]) -> set[str]:
        """Which of these versions some run consumed (batched like :meth:`get_runs`)."""
        refs = sorted({i for i in ids if ":" in i})
        answers = self._batch(refs, "artifactVersion(ref: {})", "usedBy { id }", "String!")
        return {ref for ref, data in answers.items() if data and data["usedBy"]}

    # traversals ----------------------------------------------------------------------------

    def lineage(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        default_project: str | None = None,
    ) -> Subgraph:
        start = self._qualify(start, default_project)
        if depth is None:
            if direction != "downstream":
                raise InvalidInput("an unbounded walk is only offered downstream (impact)")
            return self.impact(start)
        data = self.query(
            "query($ref: String!, $d: Direction!, $depth: Int!) {"
            f" lineage(ref: $ref, direction: $d, depth: $depth) {{ {GRAPH} }} }}",
            ref=start,
            d=direction.upper(),
            depth=depth,
        )
        return _graph(data["lineage"])

    def tree(
        self, ref: str, depth: int | None = 20, *, default_project: str | None = None
    ) -> Subgraph:
        data = self.query(
            "query($ref: String!, $depth: Int!) {"
            f" derivationTree(ref: $ref, depth: $depth) {{ {GRAPH} }} }}",
            ref=self._qualify(ref, default_project),
            depth=100 if depth is None else depth,
        )
        return _graph(data["derivationTree"])

    def impact(self, ref: str, *, default_project: str | None = None) -> Subgraph:
        data = self.query(
            f"query($ref: String!) {{ impact(ref: $ref) {{ {GRAPH} }} }}",
            ref=self._qualify(ref, default_project),
        )
        return _graph(data["impact"])

    def path(
        self, source: str, target: str, *, default_project: str | None = None
    ) -> Subgraph | None:
        data = self.query(
            f"query($a: String!, $b: String!) {{ path(from: $a, to: $b) {{ {GRAPH} }} }}",
            a=self._qualify(source, default_project),
            b=self._qualify(target, default_project),
        )
        return _graph(data["path"]) if data["path"] else None

    def _qualify(self, start: str, default_project: str | None) -> str:
        """A ref with its project (a run id stays as it is)."""
        if "/" in start or default_project is None:
            return start
        if ":" not in start:
            with contextlib.suppress(errors.RunNotFound):
                return self.get_run(start).id
        return str(parse_ref(start, default_project))

    def gc(self, *, dry_run: bool = False, grace: float = 3600.0) -> GcReport:
        raise InvalidInput("run `lineage gc` where the server's stores are, not through it")


def _error(error: Mapping[str, Any]) -> LineageError:
    extensions = error.get("extensions") or {}
    message = str(error.get("message", "server error"))
    cls = _BY_NAME.get(str(extensions.get("error", ""))) or _CODES.get(
        str(extensions.get("code", "")), LineageError
    )
    return cls(message)
