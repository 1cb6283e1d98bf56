"""Text columns line up in terminal cells: a CJK character or an emoji is two cells, a
combining mark none. The rows of ``lineage ls``, ``runs``, ``find`` and ``show`` are written
out as a terminal shows them, from names an OpenLineage emitter sent and files an SDK run
logged (the printers are the same whatever the store: SQLite)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

import lineage
from lineage.cli import cli
from lineage.columns import cells, counted, left, right, widest


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("orders", 6),
        ("订单", 4),
        ("🚀", 2),
        ("\uff21", 2),  # a full-width A
        ("cafe\u0301", 4),  # e and a combining acute accent
        ("café", 4),
        ("👩\u200d🔬", 4),  # a zero-width joiner between two emoji
        ("✔\ufe0f", 1),  # a variation selector
        ("", 0),
    ],
)
def test_cells(text: str, width: int) -> None:
    assert cells(text) == width
    assert cells(left(text, 8)) == cells(right(text, 8)) == 8


def test_widest_is_capped() -> None:
    assert widest(["订单", "ab"]) == 4
    assert widest([]) == 0
    assert widest(["x" * 100]) == 60


def _events(path: Path) -> None:
    events = []
    jobs = [("订单.load🚀", "订单/🚀"), ("plain", "orders"), ("e\u0301t\u00e9", "cafe\u0301")]
    for i, (job, output) in enumerate(jobs):
        for kind, minute in (("START", 0), ("COMPLETE", 30)):
            events.append({
                "eventType": kind, "eventTime": f"2025-03-01T0{i}:{minute:02d}:00Z",
                "producer": "https://example.com/emitter",
                "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": str(uuid.UUID(int=i + 1))},
                "job": {"namespace": "airflow://prod", "name": job},
                "inputs": [], "outputs": [{"namespace": "s3://lake", "name": output}],
            })  # fmt: skip
    path.write_text("\n".join(json.dumps(e, ensure_ascii=False) for e in events) + "\n")


def test_wide_names_line_up_in_every_listing(workdir: Path) -> None:
    store = {"LINEAGE_STORE": str(workdir / "store"), "LINEAGE_BLOBS": str(workdir / "blobs")}
    runner = CliRunner(env=store)

    def lines(*args: str) -> list[str]:
        result = runner.invoke(cli, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output.splitlines()

    _events(workdir / "events.ndjson")
    lines("import", str(workdir / "events.ndjson"))
    # s3://lake/订单/🚀 is 17 cells, one more than s3://lake/orders
    listed = lines("ls")
    assert sorted(line[: line.index(" dataset") + 8] for line in listed) == [
        "s3://lake/cafe\u0301    dataset",
        "s3://lake/orders  dataset",
        "s3://lake/订单/🚀 dataset",
    ]
    assert len({line[line.index(" dataset") :] for line in listed}) == 1  # same columns after
    ids = [f"{uuid.UUID(int=i)}  " for i in (1, 2, 3)]
    runs = [line[: line.index(" -  ") + 2] for line in lines("runs")]
    assert runs == [
        ids[0] + "airflow://prod/订单.load🚀 -",
        ids[1] + "airflow://prod/plain       -",
        ids[2] + "airflow://prod/e\u0301t\u00e9         -",
    ]
    found = lines("find", "--versions", "created > 2000-01-01")
    assert sorted(line[: line.index(" dataset") + 8] for line in found) == [
        "s3://lake/cafe\u0301:v0    dataset",
        "s3://lake/orders:v0  dataset",
        "s3://lake/订单/🚀:v0 dataset",
    ]

    # a generation of lineage: the run in 36 cells
    up = [lines("lineage", f"s3://lake/{name}", "--up")[1] for name in ("订单/🚀", "orders")]
    assert up == [
        "    1  airflow://prod/订单.load🚀 (run)" + " " * 5 + "<- nothing",
        "    1  airflow://prod/plain (run)" + " " * 11 + "<- nothing",
    ]

    # a version's files: the sizes in one column
    Path("数据").mkdir()
    Path("数据/订单.csv").write_text("1,2\n")
    Path("data.csv").write_text("3,4\n")
    with lineage.init(
        project="p", store=store["LINEAGE_STORE"], blobs=store["LINEAGE_BLOBS"]
    ) as run:
        artifact = lineage.Artifact("tables", type="dataset")
        artifact.add_file("数据/订单.csv", name="数据/订单.csv")
        artifact.add_file("data.csv")
        run.log_artifact(artifact)
    files = [
        line[: line.index(" B ") + 2] for line in lines("show", "p/tables:v0") if ".csv" in line
    ]
    assert sorted(files) == [  # the path in 40 cells, the size right-aligned in 10
        "    data.csv" + " " * 40 + "4 B",
        "    数据/订单.csv" + " " * 35 + "4 B",
    ]


def test_counted_says_one_in_the_singular_and_groups_thousands() -> None:
    assert counted(1, "file") == "1 file"
    assert counted(0, "file") == "0 files" and counted(2, "dead end") == "2 dead ends"
    assert counted(10_000, "version") == "10,000 versions"  # as "printed the nearest 10,000"
