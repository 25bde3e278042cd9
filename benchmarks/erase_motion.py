"""How well the eraser's background motion registers a build's clips, against a homography fitted to the features alone.

Usage: python benchmarks/erase_motion.py WORKSPACE [CLIP_ID ...]

For each clip with masks in WORKSPACE (a `pvtt build --workspace`; all of them when no id is given) the erase's
regions and work-resolution frames are made as the eraser makes them, and two chains of frame-to-frame maps are
estimated: ``features`` — each step the RANSAC homography of the Lucas-Kanade features outside the regions, as the
eraser did up to erase version 6 — and ``chosen`` — :func:`pvtt.erase.classical.background_motion` (the step of {no
motion, similarity, homography} that is plausible, fitted to features spread over the background, and best matches
the two frames). Each is scored by how badly it carries a frame k frames later onto frame t: the share of background
pixels (outside both regions) whose grey level differs by more than 8 after the warp, median over t, for k = 4 and 16.
Lower is better; the eraser borrows frames up to 64 away, so the long range counts.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np

from pvtt import artifacts
from pvtt.erase import EraseSettings
from pvtt.erase.classical import background_features, background_motion, dilate_region
from pvtt.items import collect_clips
from pvtt.store import Workspace


def features_only(grey: list[np.ndarray], avoid: np.ndarray) -> np.ndarray:
    """The chain of RANSAC homographies of the background features alone (the eraser up to version 6)."""
    chain = np.tile(np.eye(3), (len(grey), 1, 1))
    for t in range(len(grey) - 1):
        step = np.eye(3)
        p0, p1 = background_features(grey, avoid, t)
        if len(p0) >= 8:
            hom, inl = cv2.findHomography(p1, p0, cv2.RANSAC, 2.0)
            if hom is not None and inl is not None and inl.sum() >= 8:
                step = hom
        chain[t + 1] = chain[t] @ step
        chain[t + 1] /= chain[t + 1][2, 2]
    return chain


def mismatch(chain: np.ndarray, grey: list[np.ndarray], avoid: np.ndarray, k: int) -> float:
    size = grey[0].shape[::-1]
    errors = []
    for t in range(0, len(grey) - k, 3):
        m = np.linalg.inv(chain[t]) @ chain[t + k]  # frame t+k -> frame t
        warped = cv2.warpPerspective(grey[t + k], m, size, flags=cv2.INTER_LINEAR)
        inside = cv2.warpPerspective(np.ones_like(grey[0]), m, size, flags=cv2.INTER_NEAREST) > 0
        moved = cv2.warpPerspective(avoid[t + k].astype(np.uint8), m, size, flags=cv2.INTER_NEAREST) > 0
        px = inside & ~avoid[t] & ~moved
        errors.append(float((np.abs(warped[px].astype(np.int16) - grey[t][px]) > 8).mean()) if px.sum() > 100 else 1.0)
    return float(np.median(errors)) if errors else float("nan")


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    ws = Workspace(sys.argv[1])
    clips = {c.id: c for c in collect_clips(ws)}
    s = EraseSettings()
    print(f"{'clip':18} {'frames':>6}  {'features k4':>11} {'k16':>6}  {'chosen k4':>9} {'k16':>6}")
    totals = np.zeros(4)
    for clip_id in sys.argv[2:] or sorted(clips):
        if clip_id not in clips:
            sys.exit(f"{clip_id}: no such clip in {ws.root}")
        try:
            masks = artifacts.masks(ws, clip_id).data
        except Exception:  # not segmented in this build (rejected before segment)
            continue
        frames = clips[clip_id].load(ws).frames
        height, width = frames.shape[1:3]
        scale = min(1.0, s.work_short_side / min(height, width))
        size = (max(16, round(width * scale)), max(16, round(height * scale)))
        grey = [cv2.cvtColor(cv2.resize(f, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY) for f in frames]
        region = [cv2.resize(dilate_region(m, s.dilate, s.shadow, s.fill_holes).astype(np.uint8), size,
                             interpolation=cv2.INTER_NEAREST) for m in masks]
        avoid = np.stack([cv2.dilate(r, np.ones((9, 9), np.uint8)) > 0 for r in region])
        row = [mismatch(chain, grey, avoid, k) for chain in (features_only(grey, avoid), background_motion(grey, avoid)[0])
               for k in (4, 16)]
        totals += row
        print(f"{clip_id:18} {len(frames):6d}  {row[0]:11.3f} {row[1]:6.3f}  {row[2]:9.3f} {row[3]:6.3f}", flush=True)
    print(f"{'sum':18} {'':6}  {totals[0]:11.3f} {totals[1]:6.3f}  {totals[2]:9.3f} {totals[3]:6.3f}")


if __name__ == "__main__":
    main()
