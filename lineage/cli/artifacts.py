"""Reading and changing artifact versions: ls, show, get, verify, log, alias, delete, gc."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from lineage import sent
from lineage.cli.main import (
    Context,
    cli,
    emit_json,
    errors,
    pass_ctx,
    run_label,
    size,
    when,
)
from lineage.columns import counted, left, widest
from lineage.errors import InvalidInput, NotFound
from lineage.locations import is_location
from lineage.made import artifact_times
from lineage.names import parse_ref
from lineage.protocol import LineageService
from lineage.records import ArtifactRecord, VersionRecord
from lineage.service import Service
from lineage.versions import ArtifactVersion

JSON = click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")


@cli.command("ls")
@click.option("--type", "type_", help="Only artifacts of this type.")
@JSON
@pass_ctx
@errors
def ls(ctx: Context, type_: str | None, as_json: bool) -> None:
    """List artifacts with their latest version and aliases."""
    api = ctx.reader
    artifacts = api.artifacts(ctx.project, type=type_)
    listing = []
    for artifact in artifacts:
        versions = api.service.versions(artifact.project, artifact.name)
        latest = versions[-1] if versions else None
        aliases = sorted({a for v in versions for a in v.aliases if a != "latest"})
        listing.append((artifact, versions, latest, aliases))
    if as_json:
        emit_json(
            [
                {
                    **dataclasses.asdict(artifact),
                    **_created(api.service, artifact),
                    "versions": len(versions),
                    "latest": latest.ref if latest else None,
                    "size": latest.size if latest else None,
                    "aliases": aliases,
                }
                for artifact, versions, latest, aliases in listing
            ]
        )
        return
    if not artifacts:  # says what was asked, as `lineage runs` does
        where = [f"in project {ctx.project}" if ctx.project else "in any project"]
        click.echo("no artifacts " + ", ".join(where + [f"of type {type_}"] * bool(type_)))
        return
    # a dataset from OpenLineage by its name as sent (lineage.sent), the columns after the
    # longest name (up to a point: a 4,000-character name does not push every row over)
    names = [_listed(artifact, latest) for artifact, _, latest, _ in listing]
    width = widest(names)
    for name, (artifact, versions, latest, aliases) in zip(names, listing, strict=True):
        click.echo(
            f"{left(name, width)} {left(artifact.type, 10)} "
            f"{len(versions):>4} {'version ' if len(versions) == 1 else 'versions'}  latest "
            f"{'v' + str(latest.index) if latest else '-':<5} "
            f"{size(latest.size) if latest else '':>10}  {' '.join(aliases)}"
        )


def _listed(artifact: ArtifactRecord, latest: VersionRecord | None) -> str:
    metadata = latest.metadata if latest is not None else None
    return sent.artifact_label(artifact.project, artifact.name, metadata)


def _created(service: LineageService, artifact: ArtifactRecord) -> dict[str, float]:
    """An artifact's "created" (when its first version was made) and "stored" times."""
    created, stored = artifact_times(service, artifact)
    return {"created_at": created, "stored_at": stored}


def _version(ctx: Context, ref: str, as_of: str | None = None) -> ArtifactVersion:
    """The version ``ref`` names (then, with ``as_of``); a run id is pointed at
    ``lineage run``."""
    api = ctx.reader
    try:
        return api.artifact_version(ref, as_of)
    except (NotFound, InvalidInput):
        if ":" not in ref and "/" not in ref and api.service.get_runs([ref]):
            raise InvalidInput(
                f"{ref} is a run, not a version: `lineage run {ref}` shows a run"
            ) from None
        raise


@cli.command()
@click.argument("ref")
@click.option("--files/--no-files", default=True, help="List the version's files.")
@click.option("--as-of", help='The version the ref named then (ISO time or "2 days ago").')
@JSON
@pass_ctx
@errors
def show(ctx: Context, ref: str, files: bool, as_json: bool, as_of: str | None = None) -> None:
    """Show one version: digest, size, aliases, metadata, producing and consuming runs
    (a run: `lineage run ID`)."""
    version = _version(ctx, ref, as_of)
    record = version.record
    if as_json:
        emit_json(
            {
                "version": record,
                "logged_by": version.logged_by(),
                "used_by": version.used_by(),
                **({"files": version.files()} if files else {}),
            }
        )
        return
    shown = sent.full_label(record)  # a dataset from OpenLineage: its name as sent
    click.echo(f"{shown}  ({record.type})")
    if shown != record.ref:
        click.echo(f"  ref          {record.ref}")
    click.echo(f"  digest       {record.digest}")
    click.echo(f"  size         {size(record.size)} in {counted(record.file_count, 'file')}")
    click.echo(f"  aliases      {', '.join(record.aliases) or '-'}")
    if record.tags:  # as `lineage run` shows a run's, and --json a version's
        click.echo(f"  tags         {', '.join(record.tags)}")
    by = f" by run {record.created_by}" if record.created_by else " (no run made it: observed)"
    made = " (its OpenLineage event's time)" if record.event_at is not None else ""
    click.echo(f"  created      {when(record.made_at)}{by}{made}")
    if record.stored_apart is not None:  # an OpenLineage event stored after it was made
        click.echo(f"  stored       {when(record.stored_apart)}")
    if record.description:
        click.echo(f"  description  {record.description}")
    if record.metadata:
        click.echo(f"  metadata     {json.dumps(dict(record.metadata), sort_keys=True)}")
    for label, runs in (("logged by", version.logged_by()), ("used by", version.used_by())):
        click.echo(f"  {label:<12} " + (", ".join(run_label(r) for r in runs) or "-"))
    if files:
        click.echo("  files")
        for entry in version.files():
            where = entry.uri if entry.is_reference else (entry.digest or "")[:16]
            click.echo(f"    {left(entry.path, 40)} {size(entry.size):>10}  {where}")


@cli.command()
@click.argument("ref")
@click.argument("file", required=False)
@click.option(
    "-o", "--output", "root", type=click.Path(path_type=Path),
    help="Target directory (with FILE: the file's path, or a folder to put it in).",
)  # fmt: skip
@pass_ctx
@errors
def get(ctx: Context, ref: str, file: str | None, root: Path | None) -> None:
    """Download a version's files (or its one FILE), each verified against its digest."""
    version = _version(ctx, ref)
    if file is not None:
        one = version.file(file)
        path = one.download(root)
        click.echo(f"{sent.full_label(version.record)}: {one.path} ({size(one.size)}) in {path}")
        return
    path = version.download(root)
    click.echo(
        f"{sent.full_label(version.record)}: {counted(version.record.file_count, 'file')} in {path}"
    )


@cli.command()
@click.argument("ref")
@pass_ctx
@errors
def verify(ctx: Context, ref: str) -> None:
    """Re-hash every byte of a version and name each file that does not match."""
    version = _version(ctx, ref)
    version.verify()
    click.echo(
        f"{sent.full_label(version.record)}: {counted(version.record.file_count, 'file')} verified"
    )


@cli.command("log")
@click.argument("ref")
@JSON
@pass_ctx
@errors
def log_cmd(ctx: Context, ref: str, as_json: bool) -> None:
    """The event log of a version (name:vN) or a whole artifact (name); of an alias
    (name:production), its history of moves."""
    api = ctx.reader
    shown: tuple[str, str] | None = None  # (safe artifact key, as typed) of a storage URI
    # a dataset by its storage URI, or its label as sent (URI:vN); a store of this machine
    # (a server's RemoteService takes no storage URI: the refusal says the ref is invalid)
    if is_location(ref) and isinstance(api.service, Service):
        located, artifact = api.service.located(ref)
        shown = (f"{located.project}/{located.name}", artifact)
        ref = shown[0] if artifact == ref else str(located)
    parsed = parse_ref(ref, api.project)
    if parsed.alias is not None and ":" in ref and parsed.alias != "latest":
        events = api.alias_history(ref)
    else:
        events = api.events(ref)
    if as_json:
        emit_json(events)
        return
    if not events:
        click.echo("no events")
    for event in events:
        change = ""
        if event.old is not None:
            change += f" from {json.dumps(event.old, sort_keys=True)}"
        if event.new is not None:
            change += f" to {json.dumps(event.new, sort_keys=True)}"
        target = event.target
        if shown is not None and target.startswith(shown[0]):  # named as the user did
            target = shown[1] + target[len(shown[0]) :]
        click.echo(
            f"#{event.seq} {when(event.at)} {event.kind:<20} {target}"
            f" by {event.actor or '-'}{change}"
        )


@cli.command()
@click.argument("ref")
@click.option("--force", is_flag=True, help="Delete even if the version holds aliases.")
@pass_ctx
@errors
def delete(ctx: Context, ref: str, force: bool) -> None:
    """Delete a version (its lineage stays; its bytes go at the next gc)."""
    version = _version(ctx, ref)
    ctx.api.delete(version.ref, force=force)
    click.echo(f"deleted {sent.full_label(version.record)}")


@cli.command()
@click.argument("ref")
@click.argument("alias")
@click.option("--remove", is_flag=True, help="Remove the alias instead of moving it here.")
@pass_ctx
@errors
def alias(ctx: Context, ref: str, alias: str, remove: bool) -> None:
    """Move ALIAS to the version REF (recorded in the event log)."""
    version = _version(ctx, ref)
    if remove:
        version.remove_alias(alias)
        shown = sent.artifact_label(version.project, version.name, version.record.metadata)
        click.echo(f"removed {alias} from {shown}")
    else:
        version.set_alias(alias)
        click.echo(f"{alias} -> {sent.full_label(version.record)}")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Count what would go, delete nothing.")
@click.option(
    "--grace",
    type=float,
    default=3600.0,
    show_default=True,
    help="Keep blobs younger than this (s).",
)
@JSON
@pass_ctx
@errors
def gc(ctx: Context, dry_run: bool, grace: float, as_json: bool) -> None:
    """Delete blobs that no live version references, and temporary files older than the
    grace period that killed writers left in the blob store."""
    report = ctx.reader.gc(dry_run=dry_run, grace=grace)
    if as_json:
        emit_json({**dataclasses.asdict(report), "grace": grace})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{report.blobs_total + report.blobs_young} blobs: {report.blobs_young} younger than "
        f"the grace period ({grace:g} s) kept unchecked; {report.blobs_total} older checked, "
        f"{report.blobs_live} live, {verb} {report.blobs_removed}; temporary files: {verb} "
        f"{report.temps_removed} ({size(report.temp_bytes)})"
    )
