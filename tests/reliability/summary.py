"""The figures of a soak (``make soak``): one row a campaign, from test-artifacts/soak.jsonl.

    python tests/reliability/summary.py [test-artifacts/soak.jsonl] [--since ISO-TIME]

Each campaign appends one JSON line per test when LINEAGE_SOAK_SECONDS is set
(tests/campaign.py); this adds them up by campaign and prints a table, with a TOTAL row.
Exits 1 when any violation or error was recorded, so that ``make soak`` fails with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

COLUMNS = ("tests", "seconds", "rounds", "kills", "requests", "invariants", "violations")


def summarise(lines: list[dict[str, object]]) -> dict[str, Counter[str]]:
    rows: dict[str, Counter[str]] = {}
    for line in lines:
        row = rows.setdefault(str(line["campaign"]), Counter())
        row["tests"] += 1
        row["errors"] += int("error" in line)
        for key in COLUMNS[1:]:
            value = line.get(key, 0)
            row[key] += value if isinstance(value, int | float) else 0
    return rows


def table(rows: dict[str, Counter[str]]) -> str:
    total: Counter[str] = Counter()
    for row in rows.values():
        total.update(row)
    header = ("campaign", *COLUMNS, "errors")
    body = [
        (name, *(f"{row[c]:.0f}" for c in COLUMNS), str(row["errors"]))
        for name, row in sorted(rows.items())
    ]
    body.append(("TOTAL", *(f"{total[c]:.0f}" for c in COLUMNS), str(total["errors"])))
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    out = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *body]
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="test-artifacts/soak.jsonl", type=Path)
    parser.add_argument("--since", default="", help="only lines written at or after this time")
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"error: {args.path} does not exist: no campaign ran in soak mode", file=sys.stderr)
        return 1
    lines = [json.loads(text) for text in args.path.read_text().splitlines() if text.strip()]
    lines = [line for line in lines if str(line.get("at", "")) >= args.since]
    if not lines:
        print(f"error: no figures in {args.path} since {args.since}", file=sys.stderr)
        return 1
    rows = summarise(lines)
    print(table(rows))
    first = lines[0]
    print(f"cpu: {first.get('cpu')}; load at the end: {lines[-1].get('load')}")
    bad = sum(row["violations"] + row["errors"] for row in rows.values())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
