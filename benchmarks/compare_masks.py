"""Masks and object scores of two segment runs over the same items (e.g. ``bench_segment_ray.py`` before and after a
change, each with its own ``--root``): per item, the fraction of mask pixels that agree and the largest difference of
the per-frame confidence (SAM2's object score), over every ``masks.npz`` the two workspaces' segment records name.

    python3 benchmarks/compare_masks.py /tmp/segment_ray_old/ray /tmp/segment_ray_new/ray --out compare.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from pvtt.artifacts import load_masks  # noqa: E402
from pvtt.store import Workspace  # noqa: E402


def masks_by_item(root: Path) -> dict[str, Path]:
    """The masks file of every item whose segment record is done."""
    ws = Workspace(root)
    return {r.item_id: ws.root / r.outputs["masks_path"] for r in ws.records("segment")
            if r.status.value == "done" and "masks_path" in r.outputs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--out", default="compare_masks.json")
    args = parser.parse_args()
    before, after = masks_by_item(args.before), masks_by_item(args.after)
    rows = []
    for item in sorted(set(before) & set(after)):
        a, b = load_masks(before[item]), load_masks(after[item])
        rows.append({"item": item, "mask_agreement": float((a.data == b.data).mean()),
                     "mask_fraction": [float(a.data.mean()), float(b.data.mean())],
                     "confidence_max_diff": float(np.abs(a.confidence - b.confidence).max())})
    summary = {"items": len(rows), "only_before": len(set(before) - set(after)),
               "only_after": len(set(after) - set(before)),
               "min_mask_agreement": min((r["mask_agreement"] for r in rows), default=None),
               "max_confidence_diff": max((r["confidence_max_diff"] for r in rows), default=None)}
    print(json.dumps(summary), flush=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "items": rows}, indent=1))


if __name__ == "__main__":
    main()
