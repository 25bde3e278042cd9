"""Contact sheet of `pvtt bench run` cases: what the judge saw next to what the truth shows, for looking at verdicts.

Usage: python benchmarks/bench_sheets.py CASES WORK OUT.png [--frame 0.5] [--json bench.json]

One row per case that reached synthesize: the source frame with segment's mask of A (green outline) and A's true
mask (red outline), the edited frame with B's mask (green), the true frame with B, and the edited frame's remnant
map (magenta: A's true pixels the edit kept although the truth shows something else, away from B, as
`pvtt.bench.run.truth_defects` counts them). A case rejected before an edit was made (at curate, say) but segmented
gets the source tile only. Written over each row: the case, the pipeline's verdict and reasons, and (with --json, the
file `pvtt bench run --json` wrote) the truth's reasons.
"""
from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import cv2
import numpy as np

from pvtt import artifacts
from pvtt.bench.run import case_clip, current_pair, rejection
from pvtt.media import read_video, write_png
from pvtt.store import Workspace
from pvtt.types import Status

TILE = 320


def _outline(frame: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    return cv2.drawContours(frame, contours, -1, colour, 2)


def _fit(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(frame, (TILE, int(round(TILE * frame.shape[0] / frame.shape[1]))), interpolation=cv2.INTER_AREA)


def _row(case: Path, work: Path, where: float, truth_reasons: list[str] | None) -> np.ndarray | None:
    ws = Workspace(work / case.name / "workspace")
    pair = current_pair(ws)
    clip_id, start = case_clip(ws, case.name, pair)
    if pair is None or "edited_path" not in pair.outputs:
        return _segmented_row(case, ws, clip_id, start, where, truth_reasons, pair)
    edited = artifacts.edited(ws, pair.item_id)
    t, source, true_a, src = _source_tile(case, ws, clip_id, start, where, len(edited))
    target = read_video(case / "video_b.mp4")[0][start:]
    mask_b = artifacts.masks_b(ws, pair.item_id)[t]
    edt = _outline(edited[t].copy(), mask_b, (0, 255, 0))
    s, e, g = (x[t].astype(np.int16) for x in (source, edited, target))
    kept = (np.abs(e - s).max(axis=2) < 12) & (np.abs(s - g).max(axis=2) >= 30)
    away = ~(cv2.dilate(mask_b.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0)
    left = edited[t].copy()
    left[true_a[t] & kept & away] = (255, 0, 255)
    tiles = np.hstack([_fit(x) for x in (src, edt, target[t], left)])
    verdict = "keep" if pair.status is Status.DONE else "reject"
    reasons = pair.metrics.get("reasons") or ([pair.reason] if pair.reason else [])
    text = f"{case.name} frame {t}: judge {verdict}" + (f" ({'; '.join(reasons)})" if reasons else "")
    return _with_caption(tiles, text, truth_reasons)


def _source_tile(case: Path, ws: Workspace, clip_id: str, start: int, where: float, length: int | None = None):
    """The frame index at ``where`` of a clip of ``length`` frames (default: segment's), the source video and A's true
    masks (from the clip's start), and that source frame with segment's mask (green) and A's true mask (red)
    outlined."""
    source = read_video(case / "video_a.mp4")[0][start:]
    with np.load(case / "truth.npz") as data:
        true_a = data["masks_a"][start:]
    masks = artifacts.masks(ws, clip_id).data
    t = min(int(where * ((length or len(masks)) - 1)), len(source) - 1)
    return t, source, true_a, _outline(_outline(source[t].copy(), true_a[t], (255, 0, 0)), masks[t], (0, 255, 0))


def _segmented_row(case: Path, ws: Workspace, clip_id: str, start: int, where: float,
                   truth_reasons: list[str] | None, pair=None) -> np.ndarray | None:
    """The source tile of a case rejected before an edit was made (before its pair, or by synthesize before the
    edit: ``pair``), when it was segmented."""
    if artifacts.record(ws, "segment", clip_id, required=False) is None:
        return None
    rejected = ("synthesize", pair) if pair is not None and pair.status is Status.REJECTED else rejection(ws, case.name)
    t, _, _, src = _source_tile(case, ws, clip_id, start, where)
    text = f"{case.name} frame {t}: " + (f"rejected at {rejected[0]} ({rejected[1].reason})" if rejected
                                         else "no pair made")
    return _with_caption(_fit(src), text, truth_reasons)


def _with_caption(tiles: np.ndarray, text: str, truth_reasons: list[str] | None) -> np.ndarray:
    if truth_reasons is not None:
        text += " | truth: " + ("; ".join(truth_reasons) or "good")
    lines = textwrap.wrap(text, max(40, tiles.shape[1] // 8))
    band = np.full((18 * len(lines) + 6, tiles.shape[1], 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(band, line, (4, 16 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([band, tiles])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", type=Path)
    ap.add_argument("work", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--frame", type=float, default=0.5, help="where in the clip (0..1) the row's frame is")
    ap.add_argument("--json", type=Path, help="the file `pvtt bench run --json` wrote (for the truth's reasons)")
    args = ap.parse_args()
    truth: dict[str, list[str]] = {}
    if args.json:
        for case in json.loads(args.json.read_text())["cases"]:
            truth[case["case"]] = case["metrics"].get("truth_reasons", [])
    rows = []
    for case in sorted(p for p in args.cases.iterdir() if (p / "truth.npz").is_file()):
        row = _row(case, args.work, args.frame, truth.get(case.name) if args.json else None)
        if row is not None:
            rows.append(row)
    if not rows:
        raise SystemExit(f"no case in {args.work} reached synthesize")
    width = max(r.shape[1] for r in rows)
    write_png(args.out, np.vstack([np.pad(r, ((0, 4), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                                   for r in rows]))
    print(f"{len(rows)} cases -> {args.out}")


if __name__ == "__main__":
    main()
