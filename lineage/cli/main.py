"""The ``lineage`` command. Every verb is thin: parse, call the service layer, print.

Errors print one line (``error: ...``) on stderr and exit with the error's code (see
:mod:`lineage.errors`); usage errors exit 2.

The global options ``--store``, ``--blobs`` and ``-p/--project`` are taken before or after the
command (``lineage -p churn runs`` and ``lineage runs -p churn``), on every command and
subcommand: :class:`LineageGroup` adds them to each command it is given. Given more than once,
the last one on the command line wins; any of them beats its environment variable.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import logging
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TypeVar

import click

from lineage import __version__
from lineage.api import Api
from lineage.client import check_store
from lineage.errors import LineageError, from_os_error
from lineage.names import check_name
from lineage.records import RunRecord, VersionRecord

__all__ = ["LineageGroup", "main"]

F = TypeVar("F", bound=Callable[..., Any])


def _global_options(*, envvars: bool) -> list[click.Option]:
    def env(name: str) -> str | None:
        return name if envvars else None

    return [
        click.Option(
            ["--store"],
            envvar=env("LINEAGE_STORE"),
            help="Graph store: a directory, or neo4j://host:7687.",
        ),
        click.Option(
            ["--blobs"],
            envvar=env("LINEAGE_BLOBS"),
            help="Blob store: a directory, file:// or s3:// URL.",
        ),
        click.Option(
            ["--project", "-p"],
            envvar=env("LINEAGE_PROJECT"),
            help="Project for refs without one.",
        ),
    ]


def errors(func: F) -> F:
    """Print a :class:`LineageError` (or an OSError, as its LineageError) as one line and exit
    with its code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LineageError as exc:
            _fail(str(exc), exc.exit_code)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # click quiets a closed pipe (`lineage runs | head`)
            error = from_os_error(exc)
            _fail(str(error), error.exit_code)

    return wrapper  # type: ignore[return-value]


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {' '.join(message.split())}", err=True)
    sys.exit(code)


class Context:
    """What every verb needs: the stores and the project, and the Api over them, made once."""

    def __init__(self, store: str | None, blobs: str | None, project: str | None) -> None:
        self.store = store
        self.blobs = blobs
        self.project = project_name(project)
        self._api: Api | None = None

    def override(self, **options: str | None) -> None:
        """Options given after a command replace those given before it (or by environment)."""
        for name, value in options.items():
            if value is not None:
                if self._api is not None:
                    raise RuntimeError("global options changed after the Api was opened")
                setattr(self, name, project_name(value) if name == "project" else value)

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self.store, self.blobs, project=self.project, create=True)
        return self._api

    @property
    def reader(self) -> Api:
        """The Api for a verb that needs a store that exists: refused (NotFound) when the store
        is a local directory that holds none, instead of creating an empty store there (only
        writes create a store)."""
        if self._api is None:
            check_store(self.store)
        return self.api


def project_name(text: str | None) -> str | None:
    """The project ``-p`` names: a lineage name as given, or an OpenLineage job namespace as
    its emitter sent it, a URI (``dbt://warehouse``, ``s3://bucket``): the project its
    events went into, the name :func:`lineage.openlineage.naming.internal_name` derives from
    it. Any other text is refused as a project name (``../x``, a name too long)."""
    if text is None or "://" not in text or len(text) > _MAX_NAMESPACE:
        return None if text is None else check_name(text, "project")
    from lineage.openlineage.naming import internal_name  # only then: its package is big

    return internal_name(text)


_MAX_NAMESPACE = 4000  # lineage.openlineage.validation.MAX_NAME, without importing it


def emit_json(data: Any) -> None:
    """What every ``--json`` prints: ``data`` as indented JSON, keys sorted (NaN and the
    infinities as Python's json writes them)."""
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=_plain))


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        if isinstance(value, VersionRecord):
            data["ref"] = value.ref
            # "created" is when it was made on every surface, "stored" when lineage stored it
            data["created_at"], data["stored_at"] = value.made_at, value.created_at
        return data
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot show {type(value).__name__} as JSON")


pass_ctx = click.make_pass_decorator(Context)


def _usage_error(exc: click.ClickException) -> NoReturn:
    """Show a usage error (or any error click raises) as one ``error:`` line, and exit."""
    message = exc.format_message()
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message = f"{message.rstrip('.')} (see '{ctx.command_path} --help')"
    click.echo(f"error: {' '.join(message.split())}", err=True)
    raise click.exceptions.Exit(exc.exit_code)


class LineageGroup(click.Group):
    """A group that takes the global options on each of its commands, and shows every error,
    click's usage errors included, as one line.

    Subgroups made with ``@group.group()`` are LineageGroups too, so ``lineage token create
    --store DIR`` works as ``lineage --store DIR token create`` does.
    """

    group_class = type  # subgroups are of this class too

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _take_global_options(cmd)
        super().add_command(cmd, name)

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # `lineage` alone shows the help
        except click.ClickException as exc:
            _usage_error(exc)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as exc:
            _usage_error(exc)
        except LineageError as exc:  # a verb without @errors
            _fail(str(exc), exc.exit_code)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # click quiets a closed pipe (`lineage runs | head`)
            error = from_os_error(exc)  # names the path, exits with the code of its kind
            _fail(str(error), error.exit_code)


def _take_global_options(cmd: click.Command) -> None:
    """Add --store, --blobs and -p/--project to ``cmd``; values given merge into the Context."""
    if getattr(cmd, "_lineage_global_options", False):
        return
    options = _global_options(envvars=False)
    taken = {p.name for p in cmd.params} | {o for p in cmd.params for o in p.opts}
    clash = taken & {name for o in options for name in (o.name, *o.opts)}
    if clash:
        raise TypeError(f"command {cmd.name!r} has its own {sorted(clash)}: a global option")
    cmd.params.extend(options)
    callback = cmd.callback

    def merged(
        *args: Any, store: str | None, blobs: str | None, project: str | None, **kw: Any
    ) -> Any:
        obj = click.get_current_context().find_object(Context)
        if obj is not None:
            obj.override(store=store, blobs=blobs, project=project)
        return callback(*args, **kw) if callback is not None else None

    cmd.callback = functools.update_wrapper(merged, callback) if callback else merged
    setattr(cmd, "_lineage_global_options", True)  # noqa: B010  (not a declared attribute)


@click.group(cls=LineageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="lineage")
@click.pass_context
def cli(ctx: click.Context, store: str | None, blobs: str | None, project: str | None) -> None:
    """Record and query how every model was made.

    --store, --blobs and -p/--project may come before or after the command.
    """
    ctx.obj = Context(store, blobs, project)


cli.params[:0] = _global_options(envvars=True)  # the same three options, read from env too


def main() -> None:
    _logging()
    cli(prog_name="lineage")


class _Formatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.message}"


def _logging() -> None:
    """The command is an application, so it sets up logging: warnings print as ``warning: ...``
    lines. The Neo4j driver's own error logs are dropped: its failures reach the user as one
    ``error:`` line (StoreUnavailable), not as that line after the driver's."""
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("neo4j").setLevel(logging.CRITICAL)


def when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at else "-"


def stored(version: VersionRecord) -> str:
    """What a version's line says beside its "created" time (:attr:`VersionRecord.made_at`):
    when it was stored, where that is another time (a replayed OpenLineage event)."""
    apart = version.stored_apart
    return "" if apart is None else f"  (stored {when(apart)})"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def run_label(run: RunRecord) -> str:
    return f"{run.name} ({run.id}, {run.state})"
