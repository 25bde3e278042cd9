"""Review images: masks and points drawn over a clip's frames, a pair's edited clip with both products' regions
marked, contact sheets, and the half-size copies the review page shows."""

from __future__ import annotations

import colorsys

import cv2
import numpy as np

from pvtt.types import Clip, Masks, Tracks


def _palette(k: int) -> list[tuple[int, int, int]]:
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(1, k), 0.9, 1.0)) for i in range(k)]


def overlay_frames(clip: Clip, masks: Masks | None, tracks: Tracks | None, trail: int = 10) -> np.ndarray:
    """(T,H,W,3) uint8: the mask tinted green with its outline, each point a coloured dot with its recent trail
    (invisible points are drawn as hollow circles at their last estimate)."""
    out = clip.frames.copy()
    colours = _palette(tracks.num_points) if tracks is not None else []
    radius = max(3, clip.height // 160)
    for t in range(clip.num_frames):
        frame = out[t]
        if masks is not None:
            m = np.asarray(masks.data[t], bool)
            frame[m] = (0.55 * frame[m] + 0.45 * np.array([0, 255, 0])).astype(np.uint8)
            contours, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            cv2.drawContours(frame, contours, -1, (0, 255, 0), max(1, clip.height // 360))
        if tracks is not None:
            for j, colour in enumerate(colours):
                lo = max(0, t - trail)
                seg = tracks.points[lo:t + 1, j]
                vis = tracks.visible[lo:t + 1, j]
                for a in range(len(seg) - 1):
                    if vis[a] and vis[a + 1]:
                        cv2.line(frame, tuple(int(v) for v in seg[a]), tuple(int(v) for v in seg[a + 1]), colour,
                                 max(1, radius // 2), cv2.LINE_AA)
                p = tuple(int(round(v)) for v in tracks.points[t, j])
                cv2.circle(frame, p, radius, colour, -1 if tracks.visible[t, j] else 1, cv2.LINE_AA)
    return out


def contact_sheet(frames: np.ndarray, n: int = 8, width: int = 1280, labels: bool = True) -> np.ndarray:
    """A grid (4 per row) of ``n`` evenly spaced frames, ``width`` px wide, each labelled with its frame index."""
    frames = np.asarray(frames)
    count = frames.shape[0]
    idx = np.unique(np.linspace(0, count - 1, min(n, count)).round().astype(int))
    cols = min(4, len(idx))
    rows = -(-len(idx) // cols)
    tile_w = width // cols
    tile_h = max(1, round(frames.shape[1] * tile_w / frames.shape[2]))
    sheet = np.zeros((rows * tile_h, width, 3), np.uint8)
    for i, t in enumerate(idx):
        tile = cv2.resize(frames[t], (tile_w, tile_h), interpolation=cv2.INTER_AREA)
        if labels:
            text = f"t={t}"
            scale = max(0.4, tile_h / 300)
            cv2.putText(tile, text, (6, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0),
                        max(2, int(4 * scale)), cv2.LINE_AA)
            cv2.putText(tile, text, (6, int(24 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255),
                        max(1, int(2 * scale)), cv2.LINE_AA)
        r, c = divmod(i, cols)
        sheet[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w] = tile
    return sheet


def pair_overlay(edited: np.ndarray, masks_a: np.ndarray, masks_b: np.ndarray) -> np.ndarray:
    """The edited clip with B's region tinted green and A's outline drawn in red, at half size. Made frame by frame: a
    float copy of a whole 101-frame 1280x720 clip is 1.1 GB, and making it was most of a pair's write phase
    (`benchmarks/pair_write.py`)."""
    tint = np.array([40, 220, 90], np.float32)
    t, h, w = edited.shape[:3]
    size = _half(w, h)
    out = np.empty((t, size[1], size[0], 3), np.uint8)
    for i in range(t):
        frame = edited[i].astype(np.float32)
        frame[masks_b[i]] = frame[masks_b[i]] * 0.6 + tint * 0.4
        frame = frame.astype(np.uint8)
        contours, _ = cv2.findContours(masks_a[i].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(frame, contours, -1, (230, 40, 40), 2)
        out[i] = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return out


def _half(width: int, height: int) -> tuple[int, int]:
    return max(2, width // 4 * 2), max(2, height // 4 * 2)


def half_size(frames: np.ndarray) -> np.ndarray:
    """Review media at half size (even sides), to keep them small."""
    size = _half(frames.shape[2], frames.shape[1])
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
