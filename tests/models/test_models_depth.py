"""depth: Depth Anything backend end to end on a tiny model, stabilization, storage as video frames."""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.depth import DepthSettings, depth_to_video_frames, make_depth
from pvtt.depth.temporal import fit_scale_shift, stabilize_depth


def _scene_depth(num_frames=12, height=40, width=56, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(num_frames):  # a slanted plane and a blob that slides
        d = 1.0 + yy / height + 2.0 * np.exp(-(((xx - 10 - 2 * t) / 8) ** 2 + ((yy - 20) / 8) ** 2))
        frames.append(d + rng.normal(0, 0.01, d.shape))
    return np.stack(frames).astype(np.float32)


def test_fit_scale_shift_recovers_an_affine_map():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 5, (30, 30))
    s, b = fit_scale_shift(x, 2.5 * x - 0.7)
    assert s == pytest.approx(2.5, abs=1e-6) and b == pytest.approx(-0.7, abs=1e-6)


def test_stabilization_removes_a_flickering_per_frame_scale_and_shift():
    truth = _scene_depth()
    rng = np.random.default_rng(2)
    scale = rng.uniform(0.5, 2.0, len(truth)).astype(np.float32)
    shift = rng.uniform(-1.0, 1.0, len(truth)).astype(np.float32)
    flicker = truth * scale[:, None, None] + shift[:, None, None]
    stable = stabilize_depth(flicker, ema=1.0)
    # every frame is mapped back to frame 0's scale and shift: the error to the truth in that frame is tiny
    expected = truth * scale[0] + shift[0]
    assert np.abs(stable - expected).max() < 0.05 * np.ptp(expected)
    raw_means = flicker.mean(axis=(1, 2))
    stable_means = stable.mean(axis=(1, 2))
    assert np.std(np.diff(stable_means)) < 0.1 * np.std(np.diff(raw_means))


def test_ema_damps_frame_to_frame_noise():
    truth = _scene_depth()
    noisy = truth + np.random.default_rng(3).normal(0, 0.2, truth.shape).astype(np.float32)
    smooth = stabilize_depth(noisy, ema=0.3, align=False)
    assert np.abs(np.diff(smooth, axis=0)).mean() < 0.5 * np.abs(np.diff(noisy, axis=0)).mean()


def test_depth_video_frames_use_one_normalization_for_the_clip():
    depth = np.stack([np.full((8, 8), 1.0), np.full((8, 8), 3.0)]).astype(np.float32)
    depth[:, 0, 0] = [0.0, 4.0]  # keep a range inside each frame
    frames = depth_to_video_frames(depth, low=0, high=100)
    assert frames.shape == (2, 8, 8, 3) and frames.dtype == np.uint8
    assert frames[0, 4, 4, 0] < frames[1, 4, 4, 0]  # a nearer frame stays brighter, no per-frame stretch
    with pytest.raises(ValueError, match=r"\(T, H, W\)"):
        depth_to_video_frames(np.zeros((8, 8)))


def test_depth_anything_backend_on_a_tiny_model(clip):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import tiny_depth_anything

    estimator = make_depth(DepthSettings(device="cpu", batch_size=4, input_size=28))
    estimator.setup(model=tiny_depth_anything())
    depth = estimator.estimate(clip)
    assert depth.shape == (clip.num_frames, clip.height, clip.width)
    assert depth.dtype == np.float32 and np.isfinite(depth).all()
    raw = estimator.predict(clip.frames[:3])
    assert raw.shape == (3, clip.height, clip.width)


def test_depth_anything_loads_a_saved_model_through_its_settings(tmp_path, clip):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tiny_models import tiny_depth_anything

    tiny_depth_anything().save_pretrained(tmp_path / "da")
    estimator = make_depth(DepthSettings(model=str(tmp_path / "da"), device="cpu", input_size=28))
    estimator.setup()
    assert estimator.estimate(clip).shape == (clip.num_frames, clip.height, clip.width)


def test_depth_anything_without_weights_names_the_model(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from pvtt.models import ModelNotAvailable

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    estimator = make_depth(DepthSettings(device="cpu"))
    with pytest.raises(ModelNotAvailable, match="depth-anything/Depth-Anything-V2-Large-hf"):
        estimator.setup()


def test_torch_stabilization_matches_the_numpy_one():
    """The backend stabilizes on the model's device; it must compute what the NumPy reference computes."""
    torch = pytest.importorskip("torch")
    from pvtt.depth.temporal import stabilize_depth_torch

    truth = _scene_depth()
    rng = np.random.default_rng(5)
    flicker = (truth * rng.uniform(0.5, 2.0, len(truth))[:, None, None]
               + rng.uniform(-1, 1, len(truth))[:, None, None]).astype(np.float32)
    flicker += rng.normal(0, 0.05, flicker.shape).astype(np.float32)
    for ema, align in ((1.0, True), (0.6, True), (0.3, False)):
        expected = stabilize_depth(flicker, ema=ema, align=align)
        got = stabilize_depth_torch(torch.from_numpy(flicker), ema=ema, align=align).numpy()
        assert np.abs(got - expected).max() < 1e-3 * np.ptp(expected)


def test_estimate_equals_predict_then_stabilize_up_to_resampling(clip):
    """Stabilizing at network resolution and upsampling last gives what upsampling first would (bilinear is linear)."""
    pytest.importorskip("transformers")
    from tiny_models import tiny_depth_anything

    estimator = make_depth(DepthSettings(device="cpu", batch_size=4, input_size=28, ema=1.0, align=False))
    estimator.setup(model=tiny_depth_anything())
    np.testing.assert_allclose(estimator.estimate(clip), estimator.predict(clip.frames), rtol=1e-4, atol=1e-4)
