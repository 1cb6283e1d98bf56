"""What the dashboard's runs page and run comparison show, read from the service.

The runs page pages through the store with its keyset (``(started_at, id)``, newest or
oldest first), never loading every run: the store filters by project, job type and state;
tag and time are applied to each page as it is read, reading at most :data:`SCAN` runs for
one page (the page then says so and offers to read on). Config and summary columns are the
user's choice among the keys of the runs shown; the rows of a page sort by any column.

Comparing runs lays them side by side: facts, config and summary key by key (nested keys as
dotted paths), inputs and outputs, each row marked when the runs differ on it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from lineage import sent
from lineage.cursors import cursor, cursor_key
from lineage.errors import InvalidInput
from lineage.filters import matches, parse
from lineage.names import check_name
from lineage.records import RunRecord
from lineage.service import Service

__all__ = [
    "MAX_COLUMNS",
    "MAX_COMPARE",
    "PAGE",
    "SCAN",
    "STATES",
    "RunQuery",
    "cell",
    "compare",
    "flatten",
    "href",
    "parse_query",
    "runs_page",
]

PAGE = 50  # runs on a page, unless the page asks for another number up to MAX_PAGE
MAX_PAGE = 500
SCAN = 5000  # runs read for one page when tag or time filters narrow them
MAX_COLUMNS = 20
MAX_COMPARE = 8
MAX_KEYS = 200  # config/summary keys offered as columns, or compared
STATES = ("running", "finished", "failed", "crashed", "killed")
_FIXED = ("name", "job_type", "state", "started", "duration")
_HIGH = "\U0010ffff"  # after every id: (t, _HIGH) is past every run started at t


@dataclass(frozen=True, kw_only=True)
class RunQuery:
    """One request of the runs page, validated."""

    project: str | None = None
    job_type: str | None = None
    state: str | None = None
    tag: str | None = None
    since: float | None = None  # started at or after (UTC seconds)
    until: float | None = None  # started at or before
    newest_first: bool = True
    after: tuple[float, str] | None = None  # the keyset position of the previous page's end
    limit: int = PAGE
    columns: tuple[str, ...] | None = None  # None: the default columns of the page
    sort: str | None = None  # a column; the page's rows sorted by it
    descending: bool = False
    filter: str | None = None  # the filter language's text (lineage.filters)

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """The query string of this query with ``changes`` (for links)."""
        values = {**self.__dict__, **changes}
        out: list[tuple[str, str]] = []
        for key in ("project", "job_type", "state", "tag", "filter"):
            if values[key]:
                out.append((key, values[key]))
        for key in ("since", "until"):
            if values[key] is not None:
                out.append((key, _time_text(values[key])))
        if not values["newest_first"]:
            out.append(("order", "oldest"))
        if values["after"] is not None:
            out.append(("after", cursor(list(values["after"]))))
        if values["limit"] != PAGE:
            out.append(("limit", str(values["limit"])))
        if values["columns"] is not None:
            out.append(("cols", "1"))
            out.extend(("col", column) for column in values["columns"])
        if values["sort"]:
            out.append(("sort", values["sort"]))
            if values["descending"]:
                out.append(("dir", "desc"))
        return out


def href(query: RunQuery, **changes: Any) -> str:
    """A link to the runs page: ``query`` with ``changes``."""
    return "/runs?" + urlencode(query.params(**changes))


def cell(value: object) -> str:
    """A config or summary value as a table cell shows it."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:79] + "…"
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:79] + "…"


def _time_text(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _time(text: str, name: str) -> float:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{name} must be a date or time such as 2026-11-01 or 2026-11-01T09:30 (UTC), "
            f"got {text[:40]!r}",
            argument=name,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _column(text: str) -> str:
    section, dot, key = text.partition(".")
    if section not in ("config", "summary") or not dot or not key or len(text) > 200:
        raise InvalidInput(
            f"a column is config.<key> or summary.<key>, got {text[:60]!r}", argument="col"
        )
    return text


def parse_query(get: Callable[[str], str | None], get_all: Callable[[str], list[str]]) -> RunQuery:
    """The runs page's query from its URL parameters; InvalidInput names a bad one."""

    def text(name: str) -> str | None:
        value = (get(name) or "").strip()
        return value or None

    project, job_type = text("project"), text("job_type")
    if project is not None:
        check_name(project, "project")
    state = text("state")
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}, got {state[:40]!r}")
    tag = text("tag")
    if tag is not None and len(tag) > 200:
        raise InvalidInput("a tag is at most 200 characters")
    order = text("order") or "newest"
    if order not in ("newest", "oldest"):
        raise InvalidInput(f"order must be newest or oldest, got {order[:40]!r}")
    after = None
    if (raw := text("after")) is not None:
        key = cursor_key(raw)
        if len(key) != 2 or not isinstance(key[0], int | float) or not isinstance(key[1], str):
            raise InvalidInput("invalid cursor (after): follow the page's own links")
        after = (float(key[0]), key[1])
    limit_text = text("limit") or str(PAGE)
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
        raise InvalidInput(f"limit must be a number from 1 to {MAX_PAGE}, got {limit_text[:20]!r}")
    columns = None
    if text("cols") is not None or get_all("col"):
        columns = tuple(dict.fromkeys(_column(c) for c in get_all("col") if c))
        if len(columns) > MAX_COLUMNS:
            raise InvalidInput(f"at most {MAX_COLUMNS} columns, got {len(columns)}")
    sort = text("sort")
    if sort is not None and sort not in _FIXED:
        _column(sort)
    direction = text("dir") or "asc"
    if direction not in ("asc", "desc"):
        raise InvalidInput(f"dir must be asc or desc, got {direction[:20]!r}")
    since, until = text("since"), text("until")
    return RunQuery(
        project=project,
        job_type=job_type,
        state=state,
        tag=tag,
        since=None if since is None else _time(since, "since"),
        until=None if until is None else _time(until, "until"),
        newest_first=order == "newest",
        after=after,
        limit=int(limit_text),
        columns=columns,
        sort=sort,
        descending=direction == "desc",
        filter=text("filter"),
    )


def _filter_language(text: str) -> Callable[[RunRecord], bool]:
    """The filter language of ``lineage find`` (:mod:`lineage.filters`) as a predicate over the
    runs the page reads by its keyset: a bad filter is refused naming where and what was
    expected, and the page reads at most :data:`SCAN` runs for one page, as with tags."""
    where = parse(text, "runs")
    return lambda run: matches(where, run)


def flatten(value: Mapping[str, Any], prefix: str = "", depth: int = 4) -> dict[str, Any]:
    """``{"opt": {"lr": 1}}`` -> ``{"opt.lr": 1}`` (to ``depth`` levels; deeper stays whole)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping) and item and depth > 1:
            out.update(flatten(item, f"{path}.", depth - 1))
        else:
            out[path] = item
    return out


def _values(run: RunRecord) -> dict[str, Any]:
    found = {f"config.{k}": v for k, v in flatten(run.config).items()}
    found.update({f"summary.{k}": v for k, v in flatten(run.summary).items()})
    return found


def _matches(run: RunRecord, query: RunQuery) -> bool:
    if query.tag is not None and query.tag not in run.tags:
        return False
    if query.since is not None and run.started_at < query.since:
        return False
    return query.until is None or run.started_at <= query.until


def _past(run: RunRecord, query: RunQuery) -> bool:
    """Whether this run, and every one after it in the page order, is outside the time range."""
    if query.newest_first:
        return query.since is not None and run.started_at < query.since
    return query.until is not None and run.started_at > query.until


def _sort_key(value: object) -> tuple[int, float, str]:
    """Numbers before text, missing values last, whatever the direction."""
    if isinstance(value, bool):
        return (1, 0.0, str(value))
    if isinstance(value, int | float) and not (isinstance(value, float) and math.isnan(value)):
        return (0, float(value), "")
    if value is None:
        return (3, 0.0, "")
    return (1, 0.0, str(value))


def _count(svc: Service, query: RunQuery) -> int:
    projects = [query.project] if query.project else svc.projects()
    counts = svc.count_project_runs(projects, job_type=query.job_type, state=query.state)
    return sum(counts.values())


def runs_page(svc: Service, query: RunQuery) -> dict[str, Any]:
    """One page of runs, its columns and the cursor of the next page (None at the end)."""
    keep = _filter_language(query.filter) if query.filter else None
    narrowed = query.tag is not None or query.since is not None or query.until is not None
    narrowed = narrowed or keep is not None
    after = query.after
    if after is None and query.newest_first and query.until is not None:
        after = (query.until, _HIGH)
    elif after is None and not query.newest_first and query.since is not None:
        after = (query.since, "")
    shown: list[RunRecord] = []
    scanned, more, done = 0, False, False
    batch = query.limit + 1 if not narrowed else max(200, query.limit * 4)
    position = after
    while not done and not more and scanned < SCAN:
        chunk = svc.graph.list_runs(  # the keyset, newest first too
            query.project,
            job_type=query.job_type,
            state=query.state,
            limit=batch,
            after=position,
            newest_first=query.newest_first,
        )
        for run in chunk:
            if _past(run, query):
                done = True
                break
            if _matches(run, query) and (keep is None or keep(run)):
                if len(shown) == query.limit:
                    more = True
                    break
                shown.append(run)
            scanned += 1
            position = (run.started_at, run.id)
            if scanned >= SCAN:
                break
        if len(chunk) < batch:
            done = True
    stopped_scanning = not more and not done  # SCAN runs read without filling the page
    next_after = None
    if more:
        next_after = (shown[-1].started_at, shown[-1].id)
    elif stopped_scanning and position is not None:
        next_after = position

    values = [_values(run) for run in shown]
    rows: list[dict[str, Any]] = [
        {"run": run, "values": found} for run, found in zip(shown, values, strict=True)
    ]
    frequency: Counter[str] = Counter(key for found in values for key in found)
    available = sorted(frequency)[:MAX_KEYS]
    if query.columns is None:  # by default, the keys most runs of the page have, 3 of each
        common = sorted(frequency, key=lambda k: (-frequency[k], k))
        columns = [k for k in common if k.startswith("config.")][:3]
        columns += [k for k in common if k.startswith("summary.")][:3]
    else:
        columns = list(query.columns)
        available = sorted({*available, *columns})  # a chosen key stays offered, to unpick
    if query.sort:
        rows.sort(key=lambda row: _fixed_or_value(row, query.sort or ""), reverse=query.descending)
        missing = [row for row in rows if _fixed_or_value(row, query.sort)[0] == 3]
        rows = [row for row in rows if _fixed_or_value(row, query.sort)[0] != 3] + missing
    return {
        "rows": rows,
        "columns": columns,
        "available": available,
        "total": _count(svc, query),
        "narrowed": narrowed,
        "scanned": scanned,
        "scan_stopped": stopped_scanning,
        "next_after": next_after,
        "projects": svc.projects(),
        "states": STATES,
    }


def _fixed_or_value(row: Mapping[str, Any], column: str) -> tuple[int, float, str]:
    run: RunRecord = row["run"]
    if column == "started":
        return _sort_key(run.started_at)
    if column == "duration":
        return _sort_key(None if run.finished_at is None else run.finished_at - run.started_at)
    if column in ("name", "job_type", "state"):
        return _sort_key(getattr(run, column))
    return _sort_key(row["values"].get(column))


# comparing runs --------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Row:
    label: str
    values: tuple[str, ...]  # one per run, as shown ("" for none)

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


def _shown(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _section(label: str, runs: Sequence[Mapping[str, Any]]) -> list[_Row]:
    keys = sorted({key for values in runs for key in values})[:MAX_KEYS]
    return [
        _Row(label=f"{label}.{key}", values=tuple(_shown(values.get(key)) for values in runs))
        for key in keys
    ]


def compare(svc: Service, ids: Iterable[str]) -> dict[str, Any]:
    """Runs side by side: every fact, config and summary key, input and output, with the
    rows where they differ marked."""
    wanted = list(dict.fromkeys(check_name(i, "run id") for i in ids))
    if len(wanted) < 2:
        raise InvalidInput("select at least two runs to compare")
    if len(wanted) > MAX_COMPARE:
        raise InvalidInput(f"compare at most {MAX_COMPARE} runs at a time, got {len(wanted)}")
    found = svc.get_runs(wanted)
    for run_id in wanted:
        if run_id not in found:
            svc.get_run(run_id)  # raises RunNotFound, with its message
    runs = [found[i] for i in wanted]
    io = [svc.run_io(run.id) for run in runs]

    def refs(versions: Sequence[Any]) -> str:  # a dataset from OpenLineage as sent
        return "\n".join(sorted(sent.full_label(v) for v in versions))

    facts = [
        _Row(label="project", values=tuple(sent.project_name(r) for r in runs)),
        _Row(label="job type", values=tuple(r.job_type or "" for r in runs)),
        _Row(label="state", values=tuple(r.state for r in runs)),
        _Row(label="commit", values=tuple(r.code.commit if r.code else "" for r in runs)),
        _Row(
            label="dirty",
            values=tuple(("yes" if r.code.dirty else "no") if r.code else "" for r in runs),
        ),
        _Row(label="host", values=tuple(r.host or "" for r in runs)),
        _Row(label="tags", values=tuple(", ".join(r.tags) for r in runs)),
        _Row(label="inputs", values=tuple(refs(inputs) for inputs, _ in io)),
        _Row(label="outputs", values=tuple(refs(outputs) for _, outputs in io)),
    ]
    config = _section("config", [flatten(r.config) for r in runs])
    summary = _section("summary", [flatten(r.summary) for r in runs])
    sections = {"Run": facts, "Config": config, "Summary": summary}
    differing = sum(row.differs for rows in sections.values() for row in rows)
    return {"runs": runs, "sections": sections, "differing": differing}
