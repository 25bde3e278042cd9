"""Every product photo of a catalog through a cutout backend, as the cutout stage judges it, with a contact sheet.

    python benchmarks/cutout_photos.py ../shared/data/pvtt-dev/images --backend salient --sheet cuts.png
    python benchmarks/cutout_photos.py ../shared/data/pvtt-dev/images --backend classical
    python benchmarks/cutout_photos.py IMAGES --backend salient --set cutout.salient.threshold=0.5

For each photo (``*/*_source.*`` or any image under IMAGES): the stage's verdict — ``kept``, ``low-confidence``
(rejected when ``cutout.reject_low_confidence``), ``foreign`` (a limit of :func:`pvtt.cutout.cutout_problems`
broken, the configured hand detector on the cut over grey as the stage runs it) or ``rejected``
(no separable product) — its confidence, the measures and the seconds it took on one CPU. The sheet shows each cut
over green stripes with its verdict, to be looked at: a verdict says nothing of a sea shell or a curtain in a cut.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from pvtt.config import load_config
from pvtt.cutout import cutout_problems, make_cutter
from pvtt.errors import RejectItem
from pvtt.hands import make_hand_detector
from pvtt.media.image import load_image_rgba

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp"}


def photos(root: Path) -> list[Path]:
    found = sorted(p for p in root.rglob("*_source.*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return found or sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def tile(rgba: np.ndarray, label: str, height: int = 300) -> np.ndarray:
    """The cut over green stripes, ``height`` px high, ``label`` written on it (RGB)."""
    width = max(1, round(rgba.shape[1] * height / rgba.shape[0]))
    small = cv2.resize(rgba, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    stripes = np.full((height, width, 3), 255, np.float32)
    stripes[((np.indices((height, width)).sum(0) // 12) % 2) == 0] = (170, 200, 170)
    alpha = small[..., 3:] / 255.0
    out = (small[..., :3] * alpha + stripes * (1 - alpha)).astype(np.uint8)
    cv2.putText(out, label, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 0, 0), 2)
    return out


def sheet(tiles: list[np.ndarray], width: int = 1500) -> np.ndarray:
    rows, row, used = [], [], 0
    for t in tiles:
        if row and used + t.shape[1] > width:
            rows.append(np.hstack(row))
            row, used = [], 0
        row.append(t)
        used += t.shape[1]
    if row:
        rows.append(np.hstack(row))
    full = max(r.shape[1] for r in rows)
    return np.vstack([np.pad(r, ((0, 0), (0, full - r.shape[1]), (0, 0))) for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", type=Path)
    parser.add_argument("--backend", default="classical")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, as pvtt build --set (e.g. cutout.salient.threshold=0.5)")
    parser.add_argument("--sheet", type=Path, help="write the contact sheet here (PNG)")
    args = parser.parse_args()
    config = load_config(None, [f"cutout.backend={args.backend}", *args.set])
    settings = config.cutout
    cutter = make_cutter(settings)
    hands = make_hand_detector(config.hands)
    counts: dict[str, int] = {}
    tiles = []
    for path in photos(args.images):
        name = path.name.split("_")[0]
        start = time.perf_counter()
        try:
            result = cutter.cut_out(load_image_rgba(path)[..., :3])
        except RejectItem as exc:
            counts["rejected"] = counts.get("rejected", 0) + 1
            print(f"{name:10s} rejected        {time.perf_counter() - start:5.1f} s  {exc}")
            continue
        alpha = result.rgba[..., 3:].astype(np.float32) / 255.0
        hand = hands.hand_mask((result.rgba[..., :3] * alpha + 128 * (1 - alpha)).astype(np.uint8))
        measures, problems = cutout_problems(result, settings, hand)
        verdict = "low-confidence" if result.low_confidence else ("foreign" if problems else "kept")
        counts[verdict] = counts.get(verdict, 0) + 1
        shown = " ".join(f"{k} {v:g}" for k, v in measures.items())
        print(f"{name:10s} {verdict:15s} {time.perf_counter() - start:5.1f} s  confidence {result.confidence:.2f}  "
              f"{shown}" + (f"  | {'; '.join(problems)}" if problems else "") + f"  | {result.notes}")
        tiles.append(tile(result.rgba, f"{name} {verdict} {result.confidence:.2f}"))
    print("verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.sheet and tiles:
        cv2.imwrite(str(args.sheet), cv2.cvtColor(sheet(tiles), cv2.COLOR_RGB2BGR))
        print(f"sheet: {args.sheet}")


if __name__ == "__main__":
    main()
