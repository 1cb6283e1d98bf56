"""The SDK against a lineage server: a :class:`lineage.protocol.LineageService` over GraphQL.

:class:`RemoteService` turns each call the SDK, the CLI and :class:`lineage.Api` make into
GraphQL requests (one, or one a page); the server's service layer applies every rule, so a
remote refusal is the same error, raised here from its ``extensions.code``. Blobs travel
through :class:`lineage.storage.http.HttpBlobStore`; a version is committed only after its
blobs and manifest are on the server. Every request is retried under :mod:`lineage.retry`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from lineage import errors
from lineage.cursors import cursor as make_cursor
from lineage.errors import InvalidInput, LineageError, StoreUnavailable
from lineage.filters import parse_order
from lineage.history import alias_moves
from lineage.locations import is_location
from lineage.manifest import Manifest, read_manifest
from lineage.names import Ref, check_json, check_text, json_value, parse_ref
from lineage.pages import DEFAULT_PAGE, Page, answer_pages, capped, check_first
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
from lineage.retry import Retry, configured, send
from lineage.service import (
    GcReport,
    check_active,
    check_manifest,
    find_key,
    new_run_id,
    process_alive,
)
from lineage.storage.graph import GraphStore
from lineage.storage.http import HttpBlobStore
from lineage.traversal import check_depth, check_direction

__all__ = ["RemoteService"]

logger = logging.getLogger(__name__)

# aliased fields per request: under the server's default MaxAliasesLimiter (50)
_BATCH = 40
_JSON_BODY = {"content-type": "application/json"}

_CODES: dict[str, type[LineageError]] = {
    "INVALID_INPUT": errors.InvalidInput,
    "BAD_USER_INPUT": errors.InvalidInput,  # a GraphQL variable missing or mistyped
    "NOT_FOUND": errors.NotFound,
    "CONFLICT": errors.Conflict,
    "DATA_LOSS": errors.IntegrityError,
    "UNAVAILABLE": errors.StoreUnavailable,
    "UNAUTHENTICATED": errors.Unauthenticated,
    "FORBIDDEN": errors.Forbidden,
    "INSUFFICIENT_STORAGE": errors.StorageFull,
}
_BY_NAME: dict[str, type[LineageError]] = {
    name: getattr(errors, name) for name in errors.__all__ if name != "LineageError"
}

RUN = """id project name jobType state config summary tags notes host startedAt finishedAt
error code { commit dirty remote script command } user facets parent { id }"""
VERSION = """project name type index digest size fileCount metadata description aliases state
createdBy { id } tags eventTime storedAt"""
GRAPH = f"""nodes {{ id kind ref run {{ {RUN} }} artifactVersion {{ {VERSION} }} }}
edges {{ source target kind run {{ id }} }} truncated root"""


def _time(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def _in_order(
    runs: list[RunRecord], order_by: str | None, limit: int | None, after: Sequence[Any] | None
) -> list[RunRecord]:
    """Runs of several projects in one ``order_by`` order, after the key ``after``."""
    keyed = sorted(((find_key(order_by, r), r) for r in runs), key=lambda kr: kr[0])
    if order_by is not None and parse_order(order_by, "runs").descending:
        keyed.reverse()
        keyed = [kr for kr in keyed if after is None or kr[0] < list(after)]
    else:
        keyed = [kr for kr in keyed if after is None or kr[0] > list(after)]
    found = [r for _, r in keyed]
    return found[:limit] if limit is not None else found


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
        user=data.get("user"),
        notes=data.get("notes"),
        code=CodeVersion(**code) if code else None,
        host=data.get("host"),
        started_at=_time(data["startedAt"]) or 0.0,
        finished_at=_time(data.get("finishedAt")),
        error=data.get("error"),
        parent=(data.get("parent") or {}).get("id"),
        facets=data.get("facets") or {},
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
        created_at=_time(data["storedAt"]) or 0.0,  # the record's: when stored
        state=str(data["state"]).lower(),
        tags=tuple(data.get("tags") or ()),
        event_at=_time(data.get("eventTime")),
    )


def _artifact(data: Mapping[str, Any]) -> ArtifactRecord:
    return ArtifactRecord(
        project=data["project"],
        name=data["name"],
        type=data["type"],
        description=data.get("description"),
        created_at=_time(data["storedAt"]) or 0.0,  # the record's: when stored
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
        retry: Retry | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = configured() if retry is None else retry  # LINEAGE_RETRY_SECONDS
        # versions resolved online are remembered locally, so that a run logged offline later
        # can consume them and `lineage sync` can send that edge
        self.mirror = mirror
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10.0)
        )
        self.blobs = HttpBlobStore(self.url, token=token, retry=self.retry)
        self.requests = 0  # GraphQL requests made: what a second sync must not repeat
        self.retried = 0  # requests sent again after a failure (the first may have landed)
        try:
            self._ping()
        except BaseException:
            self.close()  # its connections and the mirror, opened for nothing
            raise

    def close(self) -> None:
        self._http.close()
        self.blobs.close()
        if self.mirror is not None:
            self.mirror.close()

    def __enter__(self) -> RemoteService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ping(self) -> None:
        """The first contact, retried like every later request (:mod:`lineage.retry`): a
        client started while its server restarts waits for it, then gives up with
        StoreUnavailable."""
        response = send(
            lambda: self._http.get("/healthz"),
            url=self.url,
            what="health check",
            policy=self.retry,
        )
        response.close()
        if response.status_code != 200:
            raise StoreUnavailable(
                f"lineage server at {self.url} is not healthy (HTTP {response.status_code})",
                url=self.url,
            )

    def _count_retry(self, reason: str) -> None:
        self.retried += 1

    def query(self, document: str, *, missing_ok: bool = False, **variables: Any) -> Any:
        """The data of one GraphQL request; with ``missing_ok``, NOT_FOUND fields are None."""
        self.requests += 1
        # not httpx's json=, which refuses NaN and infinities (what a diverged run logs);
        # numpy and torch scalars go as their plain values
        body = json.dumps({"query": document, "variables": variables}, default=json_value)
        response = send(
            lambda: self._http.post("/graphql", content=body, headers=_JSON_BODY),
            url=self.url,
            what="GraphQL request",
            policy=self.retry,
            on_retry=self._count_retry,
        )
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

    def start_run(
        self,
        *,
        project: str,
        job_type: str | None = None,
        name: str | None = None,
        config: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        code: CodeVersion | None = None,
        host: str | None = None,
        pid: int | None = None,
        run_id: str | None = None,
        started_at: float | None = None,
        user: str | None = None,  # the server records its token's actor
    ) -> RunRecord:
        check_json(config, "config")  # refused here, before it travels; the server checks too
        check_text(notes, "notes")
        variables: dict[str, Any] = {
            "project": project,
            "jobType": job_type,
            "name": name,
            "config": dict(config or {}),
            "tags": list(tags or ()),
            "notes": notes,
            "host": host,
            "pid": pid,
            "code": None
            if code is None
            else {
                "commit": code.commit,
                "dirty": code.dirty,
                "remote": code.remote,
                "script": code.script,
                "command": list(code.command),
            },
            # named here, not by the server: a retry of a request whose answer was lost
            # then finds this run instead of starting a second one
            "id": run_id or new_run_id(),
            "startedAt": None
            if started_at is None
            else datetime.fromtimestamp(started_at, tz=UTC).isoformat(),
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
            if run_id or self.retried == retried:
                raise  # the id was the caller's, or no earlier attempt can have used it
            return self.get_run(variables["id"])  # an attempt whose answer was lost made it
        return _run(data["createRun"])

    def get_run(self, run_id: str) -> RunRecord:
        data = self.query(f"query($id: ID!) {{ run(id: $id) {{ {RUN} }} }}", id=run_id)
        if data["run"] is None:
            raise errors.RunNotFound(f"run {run_id!r} does not exist", run_id=run_id)
        return _run(data["run"])

    def active_run(self, run_id: str) -> RunRecord:
        return check_active(self.get_run(run_id))

    def child_runs(self, run_id: str) -> list[RunRecord]:
        data = self.query(
            f"query($id: ID!) {{ run(id: $id) {{ children {{ {RUN} }} }} }}", id=run_id
        )
        return [_run(child) for child in (data["run"] or {}).get("children", [])]

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
        check_json(summary, "summary")
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
        check_json(summary, "summary")
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

    def count_runs(
        self, project: str, *, job_type: str | None = None, state: str | None = None
    ) -> int:
        data = self.query(
            "query($p: String!, $j: String, $s: RunState) {"
            " runs(project: $p, jobType: $j, state: $s, first: 1) { totalCount } }",
            p=project,
            j=job_type,
            s=state.upper() if state else None,
        )
        return int(data["runs"]["totalCount"])

    def find_runs(
        self,
        project: str | None = None,
        *,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[RunRecord]:
        if project is None:  # the server's runs are per project: each, then one order
            every = [
                r for p in self.projects()
                for r in self.find_runs(p, filter=filter, order_by=order_by)
            ]  # fmt: skip
            return _in_order(every, order_by, limit, after)
        return [
            _run(node)
            for node in self._found(
                "runs(project: $p, filter: $f, orderBy: $o, first: $first, after: $after)",
                RUN, "runs", project, filter, order_by, limit, after,
            )
        ]  # fmt: skip

    def find_versions(
        self,
        project: str | None = None,
        *,
        filter: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
        after: Sequence[Any] | None = None,
    ) -> list[VersionRecord]:
        return [
            _version(node)
            for node in self._found(
                "versions(project: $p, filter: $f, orderBy: $o, first: $first, after: $after)",
                VERSION, "versions", project, filter, order_by, limit, after,
            )
        ]  # fmt: skip

    def count_found_runs(self, project: str | None = None, *, filter: str | None = None) -> int:
        if project is None:  # the server's runs are per project
            return sum(self.count_found_runs(p, filter=filter) for p in self.projects())
        data = self.query(
            "query($p: String!, $f: String) { runs(project: $p, filter: $f, first: 1)"
            " { totalCount } }",
            p=project,
            f=filter,
        )
        return int(data["runs"]["totalCount"])

    def count_found_versions(self, project: str | None = None, *, filter: str | None = None) -> int:
        data = self.query(
            "query($p: String, $f: String) { versions(project: $p, filter: $f, first: 1)"
            " { totalCount } }",
            p=project,
            f=filter,
        )
        return int(data["versions"]["totalCount"])

    def _found(
        self,
        call: str,
        fields: str,
        key: str,
        project: str | None,
        filter: str | None,
        order_by: str | None,
        limit: int | None,
        after: Sequence[Any] | None,
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None if after is None else make_cursor(list(after))
        kind = "String!" if key == "runs" else "String"
        while True:
            page = 500 if limit is None else min(500, limit - len(found))
            data = self.query(
                f"query($p: {kind}, $f: String, $o: String, $first: Int!, $after: String) {{"
                f" {call} {{ nodes {{ {fields} }} pageInfo {{ hasNextPage endCursor }} }} }}",
                p=project,
                f=filter,
                o=order_by,
                first=page,
                after=cursor,
            )
            found += data[key]["nodes"]
            info = data[key]["pageInfo"]
            if not info["hasNextPage"] or (limit is not None and len(found) >= limit):
                return found
            cursor = info["endCursor"]

    def run_io(self, run_id: str) -> tuple[list[VersionRecord], list[VersionRecord]]:
        data = self.query(
            "query($id: ID!) { run(id: $id) {"
            f" consumed {{ {VERSION} }} produced {{ {VERSION} }} }} }}",
            missing_ok=True,
            id=run_id,
        )
        run = data["run"]
        if run is None:  # as the local service: no edges, no versions
            return [], []
        return [_version(v) for v in run["consumed"]], [_version(v) for v in run["produced"]]

    def projects(self) -> list[str]:
        return [p["name"] for p in self.query("{ projects { name } }")["projects"]]

    # versions ------------------------------------------------------------------------------

    def resolve(
        self, ref: str | Ref, default_project: str | None = None, *, include_deleted: bool = False
    ) -> VersionRecord:
        # a storage URI (s3://bucket/path[:v3]) is the server's to find, as the local
        # Service does, with the same refusals
        located = isinstance(ref, str) and is_location(ref)
        parsed = (
            None if located else ref if isinstance(ref, Ref) else parse_ref(ref, default_project)
        )
        said = str(ref) if parsed is None else str(parsed)
        try:
            data = self.query(
                f"query($ref: String!) {{ artifactVersion(ref: $ref) {{ {VERSION} }} }}",
                ref=said,
            )
        except errors.NotFound as error:
            # the server names live versions only; a deleted one is still in its artifact
            deleted = self._deleted(parsed) if include_deleted and parsed else None
            if deleted is None:  # the server's words, the ref as typed (as Service.resolve)
                raise type(error)(error.message, ref=said) from None
            return self._remember(deleted)
        if data["artifactVersion"] is None:
            raise errors.VersionNotFound(f"{said} does not exist", ref=said)
        return self._remember(_version(data["artifactVersion"]))

    def _deleted(self, ref: Ref) -> VersionRecord | None:
        """The deleted version ``ref`` names by index, or None."""
        if ref.index is None:
            return None
        found = self.versions(
            ref.project, ref.name, include_deleted=True, limit=1, after=ref.index - 1
        )
        if found and found[0].index == ref.index and found[0].state != "committed":
            return found[0]
        return None

    def latest(self, project: str, name: str) -> VersionRecord | None:
        data = self.query(
            f"query($p: String!, $n: String!) {{ artifact(project: $p, name: $n) {{"
            f" latest {{ {VERSION} }} }} }}",
            missing_ok=True,
            p=project,
            n=name,
        )
        latest = (data["artifact"] or {}).get("latest")
        return _version(latest) if latest else None

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

    def use(self, run_id: str, ref: str | Ref, role: str | None = None) -> VersionRecord:
        data = self.query(
            "mutation($id: ID!, $ref: String!, $role: String) "
            "{ useArtifact(runId: $id, ref: $ref, role: $role)"
            f" {{ {VERSION} }} }}",
            id=run_id,
            ref=str(ref),
            role=role,
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
        check_json(metadata, "metadata")
        check_text(description, "description")
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

    def tag(
        self,
        target: str,
        *,
        add: Iterable[str] = (),
        remove: Iterable[str] = (),
        default_project: str | None = None,
        actor: str | None = None,  # the server records its token's actor
    ) -> RunRecord | VersionRecord:
        data = self.query(
                "mutation($t: String!, $a: [String!]!, $r: [String!]!, $p: String) {"
                " tag(target: $t, add: $a, remove: $r, project: $p) {"
                f" run {{ {RUN} }} version {{ {VERSION} }} }} }}",
                t=target, a=list(add), r=list(remove), p=default_project,
            )  # fmt: skip
        tagged = data["tag"]
        return _run(tagged["run"]) if tagged["run"] is not None else _version(tagged["version"])

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
        if metadata is not None:
            check_json(metadata, "metadata")
        check_text(description, "description")
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

    def alias_history(self, ref: str, default_project: str | None = None) -> list[Event]:
        parsed = parse_ref(ref, default_project)
        if parsed.alias is None:
            raise InvalidInput(f"{parsed} is not an alias ref (name:alias)", ref=ref)
        events = self.events(f"{parsed.project}/{parsed.name}")
        return alias_moves(events, parsed.alias)

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

    def check_manifest(self, digest: str) -> Manifest:
        return check_manifest(self.blobs, digest)

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
                " nodes { project name type description storedAt }"
                " pageInfo { hasNextPage endCursor } } }",
                p=project,
                t=type,
                after=cursor,
            )
            found += [_artifact(node) for node in data["artifacts"]["nodes"]]
            page = data["artifacts"]["pageInfo"]
            if not page["hasNextPage"]:
                return found
            cursor = page["endCursor"]

    def get_artifact(self, project: str, name: str) -> ArtifactRecord:
        data = self.query(
            "query($p: String!, $n: String!) { artifact(project: $p, name: $n) {"
            " project name type description storedAt } }",
            p=project,
            n=name,
        )
        if data["artifact"] is None:
            raise errors.VersionNotFound(f"no artifact {name!r} in project {project!r}")
        return _artifact(data["artifact"])

    def versions(
        self,
        project: str,
        name: str,
        *,
        include_deleted: bool = False,
        limit: int | None = None,
        after: int | None = None,
        newest_first: bool = False,
    ) -> list[VersionRecord]:
        if newest_first:  # the server pages oldest first: read them all, then cut
            every = self.versions(project, name, include_deleted=include_deleted)[::-1]
            if after is not None:
                every = [v for v in every if v.index < after]
            return every[:limit] if limit is not None else every
        found: list[VersionRecord] = []
        cursor = None if after is None else make_cursor([after])
        while True:
            page = 500 if limit is None else min(500, limit - len(found))
            data = self.query(
                "query($p: String!, $n: String!, $d: Boolean!, $first: Int!, $after: String) {"
                " artifact(project: $p, name: $n) { versions(first: $first, after: $after,"
                f" includeDeleted: $d) {{ nodes {{ {VERSION} }}"
                " pageInfo { hasNextPage endCursor } } } }",
                missing_ok=True,
                p=project,
                n=name,
                d=include_deleted,
                first=page,
                after=cursor,
            )
            if data["artifact"] is None:
                return found
            connection = data["artifact"]["versions"]
            found += [_version(node) for node in connection["nodes"]]
            if not connection["pageInfo"]["hasNextPage"] or (
                limit is not None and len(found) >= limit
            ):
                return found
            cursor = connection["pageInfo"]["endCursor"]

    def count_versions(self, project: str, name: str, *, include_deleted: bool = False) -> int:
        data = self.query(
            "query($p: String!, $n: String!, $d: Boolean!) { artifact(project: $p, name: $n) {"
            " versions(first: 1, includeDeleted: $d) { totalCount } } }",
            missing_ok=True,
            p=project,
            n=name,
            d=include_deleted,
        )
        return int(data["artifact"]["versions"]["totalCount"]) if data["artifact"] else 0

    def aliases(self, project: str, name: str) -> list[tuple[str, VersionRecord]]:
        data = self.query(
            "query($p: String!, $n: String!) { artifact(project: $p, name: $n) {"
            f" aliases {{ alias version {{ {VERSION} }} }} }} }}",
            missing_ok=True,
            p=project,
            n=name,
        )
        held = (data["artifact"] or {}).get("aliases") or []
        return sorted((a["alias"], _version(a["version"])) for a in held)

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
        found = {ref for ref, data in answers.items() if data and data["usedBy"]}
        # a deleted version is not named by artifactVersion; its lineage still answers
        gone = [ref for ref, data in answers.items() if data is None]
        walks = self._batch(
            gone, "lineage(ref: {}, direction: DOWNSTREAM, depth: 1)", "edges { source }", "String!"
        )
        return found | {ref for ref, data in walks.items() if data and data["edges"]}

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

    # big answers in pages: cut here from the server's whole answer (one request), in the
    # order and with the cursors of lineage.pages, until its GraphQL pages them itself

    def lineage_page(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Page:
        return next(
            self.lineage_pages(
                start, direction, depth, first=first, after=after, default_project=default_project
            )
        )

    def lineage_pages(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Iterator[Page]:
        ways = check_direction(direction)
        depth = check_depth(depth)
        first = check_first(first)
        if depth is not None:  # the server pages it: one request a page
            return self._pages(
                "lineage",
                "$d: Direction!, $depth: Int!",
                "direction: $d, depth: $depth",
                first,
                after,
                ref=self._qualify(start, default_project),
                d=direction.upper(),
                depth=depth,
            )
        whole = self.lineage(start, direction, depth, default_project=default_project)
        at = start.partition("@")[2]
        root = whole.root or start
        question: list[Any] = [direction, f"{root}@{at}" if at else root, depth]
        return answer_pages(question, whole, ways, first=first, after=after)

    def lineage_count(
        self,
        start: str,
        direction: str = "upstream",
        depth: int | None = 20,
        *,
        default_project: str | None = None,
        cap: int | None = None,
    ) -> int:
        """The server counts the whole answer; ``cap`` bounds what is said, as locally."""
        depth = check_depth(depth)
        if depth is None:
            nodes = self.lineage(start, direction, depth, default_project=default_project).nodes
            return capped(len(nodes), cap)
        data = self.query(
            "query($ref: String!, $d: Direction!, $depth: Int!) {"
            " lineage(ref: $ref, direction: $d, depth: $depth, first: 1) { totalCount } }",
            ref=self._qualify(start, default_project),
            d=direction.upper(),
            depth=depth,
        )
        return capped(int(data["lineage"]["totalCount"]), cap)

    def tree_page(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Page:
        return next(
            self.tree_pages(ref, depth, first=first, after=after, default_project=default_project)
        )

    def tree_pages(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
        default_project: str | None = None,
    ) -> Iterator[Page]:
        depth = check_depth(depth)
        first = check_first(first)
        return self._pages(
            "derivationTree",
            "$depth: Int!",
            "depth: $depth",
            first,
            after,
            ref=self._qualify(ref, default_project),
            depth=100 if depth is None else depth,
        )

    def _pages(
        self, field: str, params: str, args: str, first: int, after: str | None, **variables: Any
    ) -> Iterator[Page]:
        """Pages of a graph answer asked of the server one at a time (GraphQL ``first`` /
        ``after``): the client holds one page, whatever the size of the answer."""
        document = (
            f"query($ref: String!, {params}, $first: Int!, $after: String) {{"
            f" {field}(ref: $ref, {args}, first: $first, after: $after) {{"
            f" {GRAPH} pageInfo {{ hasNextPage endCursor }} }} }}"
        )

        def pages() -> Iterator[Page]:
            cursor = after
            while True:
                data = self.query(document, first=first, after=cursor, **variables)[field]
                graph = _graph(data)
                info = data["pageInfo"]
                more = bool(info["hasNextPage"])
                yield Page(
                    nodes=graph.nodes,
                    edges=graph.edges,
                    # the server says false until it knows: not known yet, on a middle page
                    truncated=graph.truncated or (None if more else False),
                    has_next=more,
                    end_cursor=info["endCursor"],
                    root=graph.root,
                )
                if not more:
                    return
                cursor = info["endCursor"]

        return pages()

    def tree_count(
        self,
        ref: str,
        depth: int | None = 20,
        *,
        default_project: str | None = None,
        cap: int | None = None,
    ) -> int:
        data = self.query(
            "query($ref: String!, $depth: Int!) {"
            " derivationTree(ref: $ref, depth: $depth, first: 1) { totalCount } }",
            ref=self._qualify(ref, default_project),
            depth=100 if depth is None else check_depth(depth),
        )
        return capped(int(data["derivationTree"]["totalCount"]), cap)

    def _qualify(self, start: str, default_project: str | None) -> str:
        """A ref with its project (a run id stays as it is)."""
        if "/" in start or default_project is None:
            return start
        if ":" not in start:
            with contextlib.suppress(errors.RunNotFound):
                return self.get_run(start).id
        return str(parse_ref(start, default_project))

    def gc(self, *, dry_run: bool = False, grace: float = 3600.0) -> GcReport:
        raise InvalidInput(
            f"gc cannot run through the lineage server {self.url}: run `lineage gc` where "
            "the server's stores are (with --store and --blobs naming them)"
        )


def _error(error: Mapping[str, Any]) -> LineageError:
    extensions = error.get("extensions") or {}
    message = str(error.get("message", "server error"))
    cls = _BY_NAME.get(str(extensions.get("error", ""))) or _CODES.get(
        str(extensions.get("code", "")), LineageError
    )
    return cls(message)
