"""Metrics of one stage's records side by side across workspaces (builds before and after a change).

Usage:
  python benchmarks/record_metrics.py STAGE KEY[,KEY...] WS [WS ...] [--items ID,ID...] [--done-only]

KEY is a dotted path into the record's ``metrics`` (``propagate.occluded_pixels``, ``box_fill``,
``scores.remnant``); ``status`` and ``reason`` are the record's own fields. Items are the union of the
workspaces' records of STAGE, or ``--items``. Prints one row per item: the values in each workspace, in order.

  python benchmarks/record_metrics.py synthesize propagate.occluded_pixels ws7 ws8
  python benchmarks/record_metrics.py curate box_fill,status ws10
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def value(record: dict[str, Any], key: str) -> Any:
    if key in ("status", "reason"):
        return record.get(key)
    node: Any = record.get("metrics") or {}
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage")
    parser.add_argument("keys")
    parser.add_argument("workspaces", nargs="+", type=Path)
    parser.add_argument("--items", default="", help="comma-separated item ids (default: every record)")
    parser.add_argument("--done-only", action="store_true", help="only items done in the last workspace")
    args = parser.parse_args()
    keys = [k for k in args.keys.split(",") if k]
    records = {}
    for ws in args.workspaces:
        folder = ws / "records" / args.stage
        if not folder.is_dir():
            raise SystemExit(f"no {args.stage} records in {ws}")
        records[ws] = {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}
    items = [i for i in args.items.split(",") if i] or sorted(set().union(*(r.keys() for r in records.values())))
    if args.done_only:
        last = records[args.workspaces[-1]]
        items = [i for i in items if last.get(i, {}).get("status") == "done"]
    header = ["item"] + [f"{k} [{ws.name}]" for k in keys for ws in args.workspaces]
    print("\t".join(header))
    for item in items:
        row = [item]
        for key in keys:
            for ws in args.workspaces:
                record = records[ws].get(item)
                v = value(record, key) if record else None
                row.append("-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v)))
        print("\t".join(row))


if __name__ == "__main__":
    main()
