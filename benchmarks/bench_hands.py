"""Hand detection on every development template: frames with a hand found, seconds per frame, contact sheets.

    python benchmarks/bench_hands.py [DATA] --out /tmp/hands_sheets [--every 1.0] [--forearm] [--paddings 0,0.5]

DATA is a PVTT-layout folder (default ../shared/data/pvtt-dev). Frames are sampled every ``--every``
seconds of each template video, the ``mediapipe`` hand detector runs on each at full resolution, and
OUT gets ``table.md`` (the table printed at the end), ``frames.json`` (per sampled frame: time, hand
pixels) and ``<ID>.png`` per template: the sampled frames with the hand mask tinted green and outlined,
labelled with the time and ``HAND`` or ``-``. Seconds per frame are the detector's alone (decoding
excluded, models loaded before timing). Needs ``pip install 'pvtt[hands]'``. Do not commit the sheets.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np

from pvtt.catalog import load_catalog
from pvtt.hands import HandSettings, make_hand_detector
from pvtt.media.image import write_png
from pvtt.media.video import decode_frames, to_rgb

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("PVTT_DEV_DATA", REPO.parent / "shared" / "data" / "pvtt-dev"))
TILE = 320
COLUMNS = 6


def sample(video: Path, every: float) -> list[tuple[float, np.ndarray]]:
    """The first frame at or after each multiple of ``every`` seconds."""
    out, next_t = [], 0.0
    for t, frame in decode_frames(video):
        if t >= next_t - 1e-6:
            out.append((t, to_rgb(frame)))
            next_t += every
    return out


def overlay(rgb: np.ndarray, mask: np.ndarray, label: str) -> np.ndarray:
    tile = rgb.copy()
    tile[mask] = (0.55 * tile[mask] + 0.45 * np.array([0, 255, 0])).astype(np.uint8)
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(tile, contours, -1, (0, 255, 0), max(2, rgb.shape[0] // 240))
    tile = cv2.resize(tile, (TILE, round(TILE * rgb.shape[0] / rgb.shape[1])), interpolation=cv2.INTER_AREA)
    for colour, width in (((0, 0, 0), 4), ((255, 255, 255), 1)):
        cv2.putText(tile, label, (6, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, width, cv2.LINE_AA)
    return tile


def sheet(tiles: list[np.ndarray]) -> np.ndarray:
    height = max(t.shape[0] for t in tiles)
    rows = -(-len(tiles) // COLUMNS)
    out = np.zeros((rows * height, COLUMNS * TILE, 3), np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, COLUMNS)
        out[r * height:r * height + tile.shape[0], c * TILE:(c + 1) * TILE] = tile
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, required=True, help="folder for table.md, frames.json and the sheets")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between sampled frames")
    parser.add_argument("--forearm", action="store_true", help="also mask forearms found by the pose model")
    parser.add_argument("--paddings", default="0,0.5", help="search passes (see HandSettings.paddings)")
    parser.add_argument("--min-confidence", type=float, default=HandSettings().min_confidence)
    parser.add_argument("--only", nargs="*", help="template ids to run (default: all)")
    args = parser.parse_args()

    settings = HandSettings(backend="mediapipe", forearm=args.forearm, min_confidence=args.min_confidence,
                            paddings=tuple(float(v) for v in args.paddings.split(",")))
    detector = make_hand_detector(settings)
    detector.setup()
    args.out.mkdir(parents=True, exist_ok=True)
    templates = sorted(load_catalog(args.data).templates, key=lambda t: t.id)
    rows, frames_log = [], {}
    for template in templates:
        if args.only and template.id not in args.only:
            continue
        frames = sample(template.video, args.every)
        tiles, found, seconds, log = [], 0, 0.0, []
        for t, rgb in frames:
            start = time.perf_counter()
            mask = detector.hand_mask(rgb)
            seconds += time.perf_counter() - start
            hit = bool(mask.any())
            found += hit
            log.append({"t": round(t, 2), "hand_pixels": round(float(mask.mean()), 4)})
            tiles.append(overlay(rgb, mask, f"{t:.1f}s {'HAND' if hit else '-'}"))
        write_png(args.out / f"{template.id}.png", sheet(tiles))
        height, width = frames[0][1].shape[:2]
        rows.append((template.id, f"{width}x{height}", len(frames), found, seconds / len(frames)))
        frames_log[template.id] = log
        print(f"{template.id:8s} {found:3d}/{len(frames):<3d} {seconds / len(frames):.3f} s/frame", flush=True)

    lines = [f"settings: {settings.model_dump()}", "",
             "| template | size | frames sampled | frames with a hand found | s / frame |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {tid} | {size} | {n} | {found} | {sec:.3f} |" for tid, size, n, found, sec in rows]
    total_n, total_found = sum(r[2] for r in rows), sum(r[3] for r in rows)
    mean_sec = sum(r[2] * r[4] for r in rows) / max(1, total_n)
    lines.append(f"| all | | {total_n} | {total_found} | {mean_sec:.3f} |")
    (args.out / "table.md").write_text("\n".join(lines) + "\n")
    (args.out / "frames.json").write_text(json.dumps(frames_log, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
