"""The GraphQL app's answers, byte for byte, to compare two versions of the code.

Asks the app (``create_app``, its whole ASGI path: JSON in, JSON out, errors worded by the
app) over a ``lineage demo`` history a fixed list of requests, good and bad: the bundled
queries, the SDK's graph selection, aliases, fragments, ``__typename`` inside nodes,
``@skip``/``@include``, every field of nodes, edges, runs and versions, pages by
``first``/``after``, and refusals (unknown refs, limits, bad cursors, bad variables, syntax
and validation errors, a mutation without a write token). Writes status and body of each
to a JSON file: run it under each version of the code and compare the files::

    lineage demo --out /tmp/demo --no-serve
    PYTHONPATH=/work/main .venv/bin/python bench/graphql_answers.py /tmp/demo main.json
    PYTHONPATH=$PWD .venv/bin/python bench/graphql_answers.py /tmp/demo branch.json
    cmp main.json branch.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from lineage.remote import GRAPH
from lineage.server.app import create_app

QUERIES = Path(__file__).resolve().parent.parent / "graphql" / "queries"
BASE, FINAL, DATA = "surgery/policy:v24", "surgery/policy:production", "surgery/games:v0"
RUN = "id project name jobType state config summary tags notes host user startedAt finishedAt"
VERSION = """id ref project name type version index digest size fileCount metadata description
aliases tags state createdAt"""
SHAPES = f"""
query Shapes($ref: String!, $yes: Boolean!, $no: Boolean!) {{
  lineage(ref: $ref, direction: BOTH, depth: 3) {{
    __typename root ...Graph
    again: nodes {{ id @include(if: $yes) kind @skip(if: $yes) label state }}
    nodes {{ ref ref run @include(if: $no) {{ id }} artifactVersion {{ ...V version }} }}
    n2: nodes {{ __typename i: id k: kind lab: label project run {{ __typename {RUN} error
      facets }} artifactVersion {{ __typename {VERSION} }} }}
    e2: edges {{ __typename s: source target kind derivation }}
  }}
  tree: derivationTree(ref: $ref, depth: 2) {{
    nodes {{ id kind }}
    edges {{ source target kind run {{ __typename id tags code {{ commit }} }} }}
  }}
  artifactVersion(ref: $ref) {{ ...V loggedBy {{ id config summary consumed {{ ...V }} }} }}
}}
fragment Graph on LineageGraph {{ truncated edges {{ kind source }} nodes {{ id }} }}
fragment V on ArtifactVersion {{ __typename ref index size fileCount metadata aliases createdAt }}
"""
EVERY = f"""nodes {{ id kind ref label project state run {{ {RUN} }}
  artifactVersion {{ {VERSION} }} }}
edges {{ source target kind derivation run {{ id }} }}
root truncated totalCount pageInfo {{ hasNextPage endCursor }}"""


def requests() -> list[tuple[str, dict[str, Any]]]:
    upstream = (QUERIES / "upstream_lineage.graphql").read_text()
    path = (QUERIES / "version_path.graphql").read_text()
    one = "query($r: String!) { %s }"
    return [
        (upstream, {"ref": FINAL, "depth": 20}),
        (upstream, {"ref": FINAL, "depth": 3}),
        ((QUERIES / "finetuning_tree.graphql").read_text(), {"base": BASE}),
        ((QUERIES / "dataset_impact.graphql").read_text(), {"dataset": DATA}),
        (path, {"from": DATA, "to": FINAL}),
        (path, {"from": FINAL, "to": "surgery/policy:v0"}),
        (one % f"derivationTree(ref: $r) {{ {GRAPH} }}", {"r": BASE}),
        (one % f"lineage(ref: $r) {{ {GRAPH} }}", {"r": FINAL}),
        (SHAPES, {"ref": FINAL, "yes": True, "no": False}),
        (SHAPES, {"ref": FINAL, "yes": False, "no": True}),
        (SHAPES, {"ref": BASE, "yes": True, "no": True}),
        (
            one % "derivationTree(ref: $r) { nodes { id @skip(if: true) } edges { kind } }",
            {"r": BASE},
        ),
        (one % f"lineage(ref: $r, direction: BOTH, depth: 4) {{ {EVERY} }}", {"r": BASE}),
        (one % f"impact(ref: $r) {{ {EVERY} }}", {"r": DATA}),
        (one % f"lineage(ref: $r, first: 7) {{ {EVERY} }}", {"r": FINAL}),
        (one % f"derivationTree(ref: $r, first: 5) {{ {EVERY} }}", {"r": BASE}),
        (one % "lineage(ref: $r) { dot }", {"r": FINAL}),
        (one % "lineage(ref: $r) { nodes { kind: id id: kind } }", {"r": FINAL}),
        (
            one % "lineage(ref: $r) { nodes { id } nodes { kind } n: nodes { artifactVersion "
            "{ ref } } n: nodes { artifactVersion { digest } } }",
            {"r": FINAL},
        ),
        (
            one % "a: lineage(ref: $r) { root } b: derivationTree(ref: $r) { root nodes { label } }"
            " c: path(from: $r, to: $r) { nodes { id } }",
            {"r": FINAL},
        ),
        # refusals and errors
        (upstream, {"ref": "surgery/policy:v999"}),
        (upstream, {"ref": FINAL, "depth": 1000}),
        (upstream, {"ref": 5}),
        (upstream, {}),
        (one % 'lineage(ref: $r, first: 3, after: "bogus") { nodes { id } }', {"r": FINAL}),
        (one % "lineage(ref: $r, first: 3) { dot }", {"r": FINAL}),
        (one % "lineage(ref: $r, first: -1) { nodes { id } }", {"r": FINAL}),
        (one % "lineage(ref: $r) { nodes { id nope } }", {"r": FINAL}),
        ("query($r: String!) { lineage(ref: $r) { nodes { id } ", {"r": FINAL}),
        (one % "lineage(ref: $r) { nodes { artifactVersion } }", {"r": FINAL}),
        (one % "lineage(ref: $r, direction: SIDEWAYS) { nodes { id } }", {"r": FINAL}),
        (one % "lineage(ref: $r) { nodes { id ...on Run { id } } }", {"r": FINAL}),
        ("mutation { __typename }", {}),
        ('query { lineage(ref: "ab") { nodes { id } } }', {}),
    ]


async def answers(demo: Path) -> list[dict[str, Any]]:
    app = create_app(str(demo / ".lineage"), str(demo / ".lineage" / "blobs"))
    found: list[dict[str, Any]] = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:

            async def ask(document: str, variables: dict[str, Any]) -> str:
                answer = await http.post(
                    "/graphql", json={"query": document, "variables": variables}
                )
                found.append({"q": document[:60], "status": answer.status_code})
                found[-1]["body"] = answer.text
                return answer.text

            # twice: the second time every query text is one the app has seen (and, when it
            # parsed and validated, runs the short way of LineageSchema.execute)
            for _ in range(2):
                for document, variables in requests():
                    await ask(document, variables)
            # the next pages of a tree, by the cursor of each page; the same query twice
            paged = "query($r: String!, $a: String) { derivationTree(ref: $r, first: 5, after: $a)"
            after = None
            for _ in range(3):
                page = json.loads(await ask(paged + f" {{ {EVERY} }} }}", {"r": BASE, "a": after}))
                after = page["data"]["derivationTree"]["pageInfo"]["endCursor"]
            for _ in range(2):
                await ask(requests()[0][0], {"ref": FINAL})
    finally:
        app.state.lineage.close()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("demo", type=Path, help="a `lineage demo --out` folder")
    parser.add_argument("out", type=Path, help="where to write the answers (JSON)")
    args = parser.parse_args()
    found = asyncio.run(answers(args.demo))
    args.out.write_text(json.dumps(found, indent=1) + "\n")
    refused = sum('"errors"' in a["body"] for a in found)
    print(f"{len(found)} answers ({refused} with errors), {sum(len(a['body']) for a in found)} B")


if __name__ == "__main__":
    main()
