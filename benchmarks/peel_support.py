"""What `video_cutout.peel_support` takes out of video frames' product masks, drawn and measured.

    python benchmarks/peel_support.py WS TOYS012-s00-w00:0 ART001-s00-w00:0 ... [--sheet peel.png] [--raw]
    python benchmarks/peel_support.py WS TOYS012-s00-w00:all --outline

``WS`` is a build workspace; each ``CLIP:FRAME`` names a curated clip and a frame (``all``: the 24 frames
``video_cutout`` samples). Prints the share of the mask peeled (``pvtt.cutout.peel.peel_support``), on the mask as
``video_cutout`` scores it (hand pixels out, as in the stage; ``--raw``: the segment stage's mask as stored), and
draws the peeled pixels in magenta with the mask's outline in green (``--sheet``). ``--outline`` also prints two
measures tried for a mask that notches through the product (TOYS012-s00 frame 0's unicorn) and not kept: the share
of the outline where the colour 4 px inside equals the colour 4 px outside, and the share on axis-aligned straight
runs with no image edge across them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pvtt import artifacts  # noqa: E402
from pvtt.config import VideoCutoutSettings  # noqa: E402
from pvtt.cutout.peel import peel_support  # noqa: E402
from pvtt.stages.product import _sample_indices, score_frame  # noqa: E402
from pvtt.store import Workspace  # noqa: E402


def seamless_share(rgb: np.ndarray, mask: np.ndarray, d: int = 4, same: float = 8.0) -> float:
    """Share of the outline whose Lab colour ``d`` px inside is within ``same`` of the colour ``d`` px outside."""
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (0, 0), 1.5), cv2.COLOR_RGB2LAB).astype(np.float32)
    m = mask.astype(np.uint8)
    inner = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    outer = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    gy, gx = np.gradient(cv2.GaussianBlur(outer - inner, (0, 0), 2))
    ys, xs = np.nonzero((m > 0) & (inner <= 1.0))
    norm = np.hypot(gx[ys, xs], gy[ys, xs]) + 1e-6
    ux, uy = gx[ys, xs] / norm, gy[ys, xs] / norm
    h, w = mask.shape

    def at(sign: int) -> np.ndarray:  # the colour d px along the outward normal (sign 1) or inward (-1)
        yy = np.clip((ys + sign * d * uy).round().astype(int), 0, h - 1)
        xx = np.clip((xs + sign * d * ux).round().astype(int), 0, w - 1)
        return lab[yy, xx]

    out, inn = at(1), at(-1)
    return float((np.linalg.norm(out - inn, axis=1) < same).mean()) if len(ys) else 0.0


def straight_share(rgb: np.ndarray, mask: np.ndarray, min_run: float = 0.06, max_gradient: float = 12.0) -> float:
    """Share of the outline on horizontal or vertical straight runs of at least ``min_run`` of the mask box's long
    side across which the lightness gradient stays below ``max_gradient``."""
    m = mask.astype(np.uint8)
    ys, xs = np.nonzero(m)
    run = max(8, int(min_run * (max(np.ptp(ys), np.ptp(xs)) + 1)))
    light = cv2.GaussianBlur(cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32), (0, 0), 1.0)
    gy = np.abs(cv2.Sobel(light, cv2.CV_32F, 0, 1, ksize=3)) / 4
    gx = np.abs(cv2.Sobel(light, cv2.CV_32F, 1, 0, ksize=3)) / 4
    across = ((m[1:] != m[:-1]), gy[1:]), ((m[:, 1:] != m[:, :-1]).T, gx[:, 1:].T)
    total = sum(int(b.sum()) for b, _ in across)
    seam = 0
    for boundary, gradient in across:
        for r in np.flatnonzero(boundary.sum(axis=1) >= run):
            edges = np.diff(np.concatenate([[0], boundary[r].astype(np.int8), [0]]))
            for start, end in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)):
                if end - start >= run and gradient[r, start:end].mean() < max_gradient:
                    seam += end - start
    return seam / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workspace")
    parser.add_argument("frames", nargs="+", help="CLIP:FRAME or CLIP:all")
    parser.add_argument("--sheet", default=None, help="write the drawn frames here (PNG)")
    parser.add_argument("--raw", action="store_true", help="peel the stored mask, not the mask video_cutout scores")
    parser.add_argument("--outline", action="store_true", help="also print the two outline measures tried")
    args = parser.parse_args()
    ws = Workspace(Path(args.workspace))
    settings = VideoCutoutSettings()
    tiles = []
    for spec in args.frames:
        clip_id, which = spec.rsplit(":", 1)
        path = next((Path(args.workspace) / "clips").glob(f"*/*/{clip_id}.mp4"))
        from pvtt.media.video import read_video

        frames = read_video(path)[0]
        masks = artifacts.masks(ws, clip_id).data
        indices = _sample_indices(len(frames), settings.frames_per_clip) if which == "all" else [int(which)]
        for t in indices:
            rgb, mask = frames[t], masks[t].astype(bool)
            if not args.raw:
                mask = score_frame(rgb, mask, settings)[1]
            peeled = peel_support(rgb, mask)
            line = f"{clip_id}:{t} peeled {peeled.sum() / max(mask.sum(), 1):.3f}"
            if args.outline:
                kept = mask & ~peeled
                line += f" seamless {seamless_share(rgb, kept):.3f} straight {straight_share(rgb, kept):.3f}"
            print(line, flush=True)
            if args.sheet:
                vis = rgb.copy()
                vis[peeled] = (0.3 * vis[peeled] + 0.7 * np.array([255, 0, 255])).astype(np.uint8)
                outline = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
                vis[outline > 0] = (0, 255, 0)
                ys, xs = np.nonzero(mask)
                vis = vis[max(ys.min() - 20, 0):ys.max() + 20, max(xs.min() - 20, 0):xs.max() + 20]
                vis = cv2.resize(vis, (max(1, int(vis.shape[1] * 300 / vis.shape[0])), 300))
                cv2.putText(vis, f"{clip_id}:{t}", (5, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1)
                tiles.append(vis)
    if args.sheet and tiles:
        rows, row, width = [], [], 0
        for tile in tiles:
            if row and width + tile.shape[1] > 1800:
                rows.append(row)
                row, width = [], 0
            row.append(tile)
            width += tile.shape[1]
        rows.append(row)
        full = max(sum(t.shape[1] for t in r) for r in rows)
        sheet = np.concatenate([np.pad(np.concatenate(r, 1), ((0, 0), (0, full - sum(t.shape[1] for t in r)), (0, 0)))
                                for r in rows])
        cv2.imwrite(args.sheet, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
