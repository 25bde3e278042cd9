"""Grid tracking for curate's motion score."""

from __future__ import annotations

import numpy as np

from pvtt.curate import CurateSettings, curate
from pvtt.track import track_grid
from pvtt.types import Clip, Masks, Tracks


def test_grid_motion_survives_a_black_lead_in_frame(panning_clip):
    """A fade-in (black frame 0, where LK finds nothing) must not freeze the grid: lost points are
    re-seeded, so the pan is still measured on most of the frame and the clip is not called static."""
    frames = np.concatenate([np.zeros_like(panning_clip.frames[:1]), panning_clip.frames])
    clip = Clip("fade-in pan", frames, panning_clip.fps)
    grid = track_grid(clip, step=32)
    steps = grid.visible[1:] & grid.visible[:-1]
    d = np.diff(grid.points, axis=0)[steps]
    assert steps[2:].mean() > 0.8  # tracked again from the first textured frame on
    assert np.allclose(np.median(d, axis=0), (-3.0, -1.0), atol=0.3)  # re-seeding jumps never count as motion
    masks = Masks(np.zeros(frames.shape[:3], bool))
    masks.data[:, 80:160, 100:200] = True
    no_points = Tracks(np.zeros((len(frames), 0, 2), np.float32), np.zeros((len(frames), 0), bool))
    result = curate(clip, masks, no_points, CurateSettings())
    assert not any(r.startswith("too static") for r in result.reasons), result.reasons
