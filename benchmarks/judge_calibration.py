"""The judge's defect checks against a reviewer's labels, on the pairs of a built workspace.

Usage:
  python benchmarks/judge_calibration.py WORKSPACE LABELS.yaml [--set judge.max_remnant=0.1 ...] [--json F]

LABELS maps a pair id to the defects a reviewer saw when looking at it (an empty list: clean), with the
kinds ``remnant`` (A left behind), ``smear`` (erase smear), ``foreign`` (a hand, shelf or backdrop in B's
cutout), ``floating`` (B hangs where A stood) and ``other`` (anything else a reviewer would reject: B
misplaced, cut, wrong scale, drifting). Only labelled pairs are scored.

The judge is re-run on every labelled pair from the workspace's stored artifacts (source clip, erased
background, A's masks and tracks, the edited clip and B's masks, B's target image) with the config given by
``--set`` (so thresholds can be tried without rebuilding). Printed: per check, how often it fires and its
precision / recall against the labels of its kind; the whole judge's keep rate; and the fraction of kept pairs
that are clean (the issue's target: at least 0.90).
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import yaml

from pvtt import artifacts
from pvtt.config import load_config
from pvtt.items import collect_clips
from pvtt.judge import judge
from pvtt.store import Workspace
from pvtt.types import Status

KINDS = ("remnant", "smear", "foreign", "floating")
REASON_KIND = {"remnant of A": "remnant", "erase smear": "smear", "foreign content": "foreign",
               "floating": "floating"}


def reason_kinds(reasons: list[str]) -> set[str]:
    """The defect kinds named by a verdict's reasons (other reasons — background, identity … — are 'other')."""
    kinds = set()
    for reason in reasons:
        head = reason.split(":", 1)[0]
        kinds.add(REASON_KIND.get(head, "other"))
    return kinds


def judge_pair(ws: Workspace, pair: dict, clips: dict, config) -> tuple[str, list[str], dict]:
    clip = clips[pair["clip_id"]]
    source = clip.load(ws).frames
    edited = artifacts.edited(ws, pair["pair_id"])
    masks_b = artifacts.masks_b(ws, pair["pair_id"])
    product_rgba = artifacts.cutout(ws, pair["product_id"])
    tracks = artifacts.tracks(ws, clip.id)
    result = judge(source, edited, artifacts.masks(ws, clip.id), masks_b, product_rgba, tracks, config.judge,
                   background=artifacts.background(ws, clip.id))
    return result.verdict, list(result.reasons), result.scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("workspace", type=Path)
    ap.add_argument("labels", type=Path)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    ws = Workspace(args.workspace)
    config = load_config(None, args.overrides)
    labels = {k: set(v or []) for k, v in yaml.safe_load(args.labels.read_text()).items()}
    pairs = {p["pair_id"]: p for p in json.loads((ws.root / "pairs.json").read_text())}
    clips = {c.id: c for c in collect_clips(ws)}
    rows = []
    for pair_id, seen in sorted(labels.items()):
        record = ws.read_record("synthesize", pair_id)
        if pair_id not in pairs or record is None or record.status is Status.FAILED or \
                "edited_path" not in record.outputs:
            print(f"skip {pair_id}: no edited clip in this workspace")
            continue
        verdict, reasons, scores = judge_pair(ws, pairs[pair_id], clips, config)
        rows.append({"pair_id": pair_id, "labels": sorted(seen), "verdict": verdict, "reasons": reasons,
                     "fired": sorted(reason_kinds(reasons)), "scores": {k: round(v, 4) for k, v in scores.items()}})
        print(f"{pair_id:44s} {verdict:6s} labels={sorted(seen)} fired={rows[-1]['fired']} "
              f"remnant={scores.get('remnant', float('nan')):.3f} fill={scores.get('fill_visible', float('nan')):.2f}"
              f"/{scores.get('fill_texture', float('nan')):.2f} seams={scores.get('fill_seams', float('nan')):.2f} "
              f"float={scores.get('floating', float('nan')):.3f}")
    print()
    print(f"{'check':10s} {'fires':>5s} {'true+':>5s} {'labelled':>8s} {'precision':>9s} {'recall':>6s}")
    summary = {}
    for kind in KINDS + ("other",):
        fired = [r for r in rows if kind in r["fired"]]
        labelled = [r for r in rows if kind in r["labels"]]
        tp = sum(kind in r["labels"] for r in fired)
        precision = tp / len(fired) if fired else float("nan")
        recall = tp / len(labelled) if labelled else float("nan")
        summary[kind] = {"fires": len(fired), "true_positives": tp, "labelled": len(labelled),
                         "precision": precision, "recall": recall}
        print(f"{kind:10s} {len(fired):5d} {tp:5d} {len(labelled):8d} {precision:9.2f} {recall:6.2f}")
    kept = [r for r in rows if r["verdict"] == "keep"]
    clean_kept = sum(not r["labels"] for r in kept)
    defective = [r for r in rows if r["labels"]]
    caught = sum(r["verdict"] == "reject" for r in defective)
    print(f"\n{len(rows)} labelled pairs judged: {len(kept)} kept, {clean_kept} of them clean "
          f"({clean_kept / max(len(kept), 1):.2f}; target ≥ 0.90); {caught} of {len(defective)} defective pairs "
          f"rejected; {sum(not r['labels'] for r in rows) - clean_kept} clean pairs rejected")
    print("defects seen among kept pairs:", dict(Counter(k for r in kept for k in r["labels"])))
    if args.json:
        args.json.write_text(json.dumps({"pairs": rows, "checks": summary, "kept": len(kept),
                                         "kept_clean": clean_kept}, indent=1))


if __name__ == "__main__":
    main()
