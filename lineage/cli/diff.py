"""``lineage diff A B``: why two versions (or runs) differ, as text or ``--json``."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click

from lineage import sent
from lineage.cli.main import Context, cli, errors, pass_ctx, size
from lineage.columns import counted
from lineage.diff import KeyChange, LineageDiff, Side
from lineage.records import Node

__all__ = ["diff_lines"]

_SIGN = {"added": "+", "removed": "-", "changed": "~"}
_WIDTH = 60


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr)
    return text if len(text) <= _WIDTH else text[: _WIDTH - 3] + "..."


def _change(c: KeyChange) -> str:
    if c.change == "added":
        return f"+ {c.path}: {_value(c.b)}"
    if c.change == "removed":
        return f"- {c.path}: {_value(c.a)}"
    return f"~ {c.path}: {_value(c.a)} -> {_value(c.b)}"


def _short(ref: str, project: str | None, nodes: Mapping[str, Node]) -> str:
    """A node's label seen from the project of side A (:mod:`lineage.sent`: ``name:vN``
    inside it, ``project/name:vN`` outside it, a dataset from OpenLineage as it was sent)."""
    node = nodes.get(ref)
    if node is not None and node.version is not None:
        return sent.version_label(node.version, project)
    if node is not None and node.run is not None:
        return sent.run_label(node.run, project)
    head, _, tail = ref.partition("/")
    return tail if tail and head == project else ref


def _side(letter: str, side: Side, project: str | None) -> str:
    run = side.run
    made = ""
    if run is not None:
        made = f"{run.name} ({run.job_type or 'run'}, {run.id}, {run.state})"
    if side.version is not None:
        v = side.version
        aliases = [a for a in v.aliases if a != "latest"]
        shown = sent.version_label(v, project) + (f" [{', '.join(aliases)}]" if aliases else "")
        return f"{letter}  {shown}  {v.type}, {counted(v.file_count, 'file')}, {size(v.size)}" + (
            f"; made by {made}" if made else ""
        )
    return f"{letter}  run {made}"


def _section(out: list[str], title: str, changes: Sequence[KeyChange]) -> None:
    if changes:
        out.append(f"{title}:")
        out.extend("  " + _change(c) for c in changes)
    else:
        out.append(f"{title}: same")


def diff_lines(d: LineageDiff) -> list[str]:
    """The text of ``lineage diff``: the sides, files, metadata, how made, ancestry."""
    first = d.a.version or d.a.run
    project = first.project if first is not None else None
    nodes = {n.id: n for graph in d.upstreams or () for n in graph.nodes}

    def short(ref: str) -> str:
        return _short(ref, project, nodes)

    out = [_side("A", d.a, project), _side("B", d.b, project), ""]
    if d.unlisted:
        unlisted = " nor ".join(short(ref) for ref in d.unlisted)
        out.append(f"files: not compared: this blob store holds no file list of {unlisted}")
    if d.files is not None:
        f = d.files
        if f.same and not f.unchanged:
            out.append("files: none on either side")
        elif f.same:
            out.append(f"files: same ({counted(f.unchanged, 'file')})")
        else:
            out.append(
                f"files: {len(f.changed)} changed, {len(f.added)} added, "
                f"{len(f.removed)} removed, {f.unchanged} unchanged"
            )
            for change in (*f.changed, *f.added, *f.removed):
                a, b = change.a, change.b
                sizes = " -> ".join(size(e.size) for e in (a, b) if e is not None)
                digests = " -> ".join(
                    (e.digest or e.uri or "")[:12] for e in (a, b) if e is not None
                )
                out.append(f"  {_SIGN[change.change]} {change.path}  {sizes}  {digests}")
    if d.description is not None:
        out.append("description: " + _change(d.description)[2:].partition(": ")[2])
    if d.a.version is not None or d.b.version is not None:  # runs have no metadata
        _section(out, "metadata", d.metadata)
        out.append("")
    m = d.made
    if m.a_run is None or m.b_run is None:
        alone = "A" if m.a_run else "B"
        none = m.a_run == m.b_run
        out.append(
            "how made: "
            + ("no producing run on either side" if none else f"only {alone} has a producing run")
        )
    elif m.a_run == m.b_run:
        out.append(f"how made: the same run ({m.a_run})")
    else:
        out.append(
            "job type: " + (_change(m.job_type)[2:].partition(": ")[2] if m.job_type else "same")
        )
        _section(out, "config", m.config)
        _section(out, "summary", m.summary)
        _section(out, "code", m.code)
    out.append("")
    anc = d.ancestry
    if anc.merge_bases:
        out.append("merge base: " + ", ".join(short(b) for b in anc.merge_bases))
    else:
        out.append("merge base: none (no common ancestor)")
    for letter, chain in (("A", anc.chain_a), ("B", anc.chain_b)):
        since = "since the merge base" if anc.merge_bases else "upstream"
        out.append(f"{letter}: {counted(len(chain), 'run')} {since}")
        for step in chain:
            consumed = ", ".join(short(r) for r in step.consumed) or "nothing"
            produced = ", ".join(short(r) for r in step.produced)
            job = step.run.job_type or "run"
            out.append(
                f"  {step.run.name} ({job})  {consumed}" + (f" -> {produced}" if produced else "")
            )
    if anc.inputs:
        out.append("upstream inputs that differ:")
        for item in anc.inputs:

            def refs(versions: Sequence[Any]) -> str:
                return ", ".join(
                    short(v.ref) + (f" ({v.description})" if v.description else "")
                    for v in versions
                )

            if item.a and item.b:
                out.append(f"  A used {refs(item.a)}")
                out.append(f"  B used {refs(item.b)}")
            else:
                out.append(f"  only {'A' if item.a else 'B'} used {refs(item.a or item.b)}")
    else:
        out.append("upstream inputs that differ: none")
    out.append(f"upstream inputs both share: {anc.shared_inputs}")
    if anc.truncated:
        out.append("(the walk stopped at its depth: an older common ancestor may lie beyond)")
    return out


def print_diff(d: LineageDiff, echo: Callable[[str], None]) -> None:
    for line in diff_lines(d):
        echo(line)


@cli.command("diff")
@click.argument("a")
@click.argument("b")
@click.option("--depth", type=int, default=100, show_default=True, help="Generations walked up.")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@pass_ctx
@errors
def diff_cmd(ctx: Context, a: str, b: str, depth: int, as_json: bool) -> None:
    """Why are A and B different? Two versions (refs) or two runs (ids): files, metadata,
    how each was made, and where their lineages part."""
    found = ctx.reader.diff(a, b, depth=depth)
    if as_json:
        click.echo(json.dumps(found.to_json(), indent=2, sort_keys=True, default=repr))
    else:
        print_diff(found, click.echo)
