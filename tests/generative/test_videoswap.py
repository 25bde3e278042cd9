"""propagate svd-points (VideoSwap's semantic point registration on SVD) on a tiny random SVD (CPU, seconds).

Properties that hold whatever the weights: a zero registration changes nothing, the features land exactly at
the points' cells, sampling is bilinear, training touches only the MLPs, identical A and B map every point to
itself, and the backend resolves through make_propagator and a saved model folder.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from tiny_pipelines import moving_tracks, product_mask  # noqa: E402

from pvtt.propagate import PropagateResult, PropagateSettings, make_propagator  # noqa: E402
from pvtt.propagate.videoswap import (SvdPointsPropagator, build_registration, sample_features, splat,  # noqa: E402
                                      splat_plan)
from pvtt.types import Clip, InsertResult, Tracks  # noqa: E402

SMALL = dict(device="cpu", height=32, width=32, train_frames=4, num_frames=4, inference_steps=2, train_steps=2,
             blocks=[0, 1], mlp_width=8, match_step=1, decode_chunk_size=4, lr=1e-2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def clip6(small_clip):
    return Clip("vs-tiny", small_clip.frames[:6].copy(), 20.0, template_id="tiny")


def points_backend(svd, **kw):
    backend = SvdPointsPropagator(**{**SMALL, **kw})
    backend.setup(model=svd)
    return backend


def random_mlps(backend, embed_dim=16, seed=1):
    torch.manual_seed(seed)
    mlps = build_registration(embed_dim, backend.block_channels(), 8)
    for mlp in mlps:
        torch.nn.init.normal_(mlp[2].weight, std=0.5)
    return mlps.requires_grad_(False)


def test_sampling_is_bilinear_at_cell_centres():
    fmap = torch.arange(2 * 4 * 8, dtype=torch.float32).view(1, 2, 4, 8)  # a 32x16 image, 4-px cells
    centre = lambda i, j: [j * 4 + 1.5, i * 4 + 1.5]  # noqa: E731
    points = torch.tensor([[centre(0, 0), centre(2, 5), centre(3, 7)]])
    out = sample_features(fmap, points, 16, 32)[0]
    assert torch.equal(out, torch.stack([fmap[0, :, 0, 0], fmap[0, :, 2, 5], fmap[0, :, 3, 7]]))
    halfway = sample_features(fmap, torch.tensor([[[3.5, 3.5]]]), 16, 32)[0, 0]  # between (0,0),(0,1),(1,0),(1,1)
    assert torch.allclose(halfway, fmap[0, :, :2, :2].mean((-1, -2)))
    # splatting is its transpose: a value at a cell centre lands in that cell only, weights sum to 1
    plan = splat_plan(np.float32([[centre(2, 5), [3.5, 3.5]]]), np.ones((1, 2), bool), (16, 32), (4, 8))
    grid = splat(torch.tensor([[1.0], [10.0]]), plan)[0, 0]
    assert grid[2, 5] == 1.0 and torch.allclose(grid[:2, :2], torch.full((2, 2), 2.5)) and grid.sum() == 11.0


def test_zero_registration_generates_exactly_the_plain_video(svd, small_clip):
    from PIL import Image

    backend = points_backend(svd)
    first = small_clip.frames[0]
    plain = svd(Image.fromarray(first), height=32, width=32, num_frames=4, num_inference_steps=2,
                min_guidance_scale=1.0, max_guidance_scale=3.0, fps=7, motion_bucket_id=127, noise_aug_strength=0.02,
                decode_chunk_size=4, generator=torch.Generator("cpu").manual_seed(0), output_type="np").frames[0]
    plain = np.clip(np.asarray(plain) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    assert np.array_equal(backend.generate_points(first, 4), plain)  # no points
    points = np.tile(np.float32([[[10, 12], [20, 8]]]), (7, 1, 1))
    visible = np.ones((7, 2), bool)
    emb = torch.randn(2, 16)
    zero = build_registration(16, backend.block_channels(), 8)  # output layers start at zero
    assert np.array_equal(backend.generate_points(first, 4, zero, emb, points[:4], visible[:4]), plain)
    assert not np.array_equal(backend.generate_points(first, 4, random_mlps(backend), emb, points[:4], visible[:4]),
                              plain)
    # two chunks (4 + 3 new frames): still nothing changes with a zero registration
    assert np.array_equal(backend.generate_points(first, 7, zero, emb, points, visible), backend.generate_points(first, 7))


def test_injection_adds_features_only_at_the_points_cells(svd, small_clip):
    backend = points_backend(svd)
    frames = small_clip.frames[:3]
    latents = backend._latents(backend._pixels(frames)).float()[None]
    embedding, cond = backend._condition(frames[0], torch.Generator().manual_seed(0))
    time_ids = backend._time_ids(latents.dtype)
    points = np.float32([[[5, 6], [20, 25]], [[7, 6], [21, 24]], [[9, 7], [22, 23]]])
    visible = np.array([[True, True], [True, False], [False, False]])
    mlps = random_mlps(backend)
    residuals = backend.point_residuals(mlps, torch.randn(2, 16), points, visible, tuple(latents.shape[-2:]))
    layer = backend._last_layer(svd.unet.down_blocks[0])
    seen = []
    sigma, noise = torch.tensor([1.0]), torch.randn(latents.shape)

    def grab(module, args, output):
        seen.append((output[0] if isinstance(output, tuple) else output).clone())

    with torch.no_grad():
        backend.point_loss(latents, embedding, cond, time_ids, sigma, noise)  # warm, no hook
        handle = layer.register_forward_hook(grab)
        backend.point_loss(latents, embedding, cond, time_ids, sigma, noise)
        handle.remove()
        with backend.injecting(residuals):
            handle = layer.register_forward_hook(grab)  # runs after the injection hook
            backend.point_loss(latents, embedding, cond, time_ids, sigma, noise)
            handle.remove()
    diff = (seen[1] - seen[0]).abs().sum(1)  # (F, h, w)
    assert torch.allclose(seen[1] - seen[0], residuals[0], atol=1e-5)
    h, w = diff.shape[1:]
    expected = np.zeros((3, h, w), bool)
    plan = splat_plan(points, visible, (32, 32), (h, w))
    expected.reshape(-1)[plan.cell] = True
    assert diff[torch.from_numpy(~expected)].max() == 0  # nothing away from the splats
    assert (diff[torch.from_numpy(expected)] > 0).any() and diff[2].max() == 0  # frame 2: no visible point
    assert set(residuals) == {0, 1} and backend.block_names() == ["down_blocks.0", "down_blocks.1"]


def test_training_changes_only_the_registration(svd, clip6):
    backend = points_backend(svd, train_steps=3, loss_region="points", patch_radius=1)
    before = {k: v.clone() for k, v in svd.unet.state_dict().items()}
    masks = product_mask(clip6.frames)
    tracks = moving_tracks(masks, count=4)
    frames = clip6.frames
    emb = backend.point_embeddings(frames, tracks.points, tracks.visible)
    assert emb.shape == (4, svd.unet.up_blocks[1].resnets[-1].spatial_res_block.out_channels)
    mlps = backend.train_points(frames, tracks.points, tracks.visible, emb)
    after = svd.unet.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert len(backend.last_losses) == 3 and np.isfinite(backend.last_losses).all()
    assert all(mlp[2].weight.abs().sum() > 0 for mlp in mlps)  # moved off the zero init
    assert not any(p.requires_grad for p in svd.unet.parameters())


def test_identical_a_and_b_map_every_point_to_itself(svd, clip6):
    backend = points_backend(svd, min_similarity=-1.0)
    frames = clip6.frames
    points = np.float32([[6, 7], [16, 16], [25, 10], [12, 27]])
    fmap_a, fmap_b = backend.frame_features(frames[:1], 1), backend.frame_features(frames[:1].copy(), 1)
    assert torch.equal(fmap_a, fmap_b)
    match, sim = backend.match_points(fmap_a, points, fmap_b, (0, 0, 31, 31), (32, 32))
    cell = 32 / fmap_a.shape[-1]
    assert np.abs(match - points).max() <= cell and (sim > 0.99).all()


def test_propagate_through_make_propagator(svd, clip6, tmp_path):
    svd.save_pretrained(tmp_path / "svd")
    settings = PropagateSettings(backend="svd-points", svd_points={**SMALL, "model": str(tmp_path / "svd"),
                                                                   "min_similarity": -1.0, "feather": 1,
                                                                   "mask_dilate": 2})
    backend = make_propagator(settings)
    assert isinstance(backend, SvdPointsPropagator) and backend.settings.mlp_width == 8
    backend.setup()
    masks = product_mask(clip6.frames)
    tracks = moving_tracks(masks, count=3)
    # B == A: the edit is the source's own first frame, so every point is its own match
    same = backend.propagate(clip6, None, masks, tracks, clip6.frames[0])
    assert isinstance(same, PropagateResult) and same.frames.shape == clip6.frames.shape
    assert same.strategy == "svd-points" and same.info["blocks"] == ["down_blocks.0", "down_blocks.1"]
    assert same.info["feature_block"] == "up_blocks.1" and same.info["matched"] == 3
    for entry in same.info["points"]:
        assert np.abs(np.subtract(entry["a"], entry["b"])).max() <= 2.0, entry
    # an edit with B's box: points land inside it, the clip keeps its shape, the source stays outside
    frame = clip6.frames[0].copy()
    frame[10:22, 14:26] = (200, 30, 30)
    alpha = np.zeros((32, 32), np.float32)
    alpha[10:22, 14:26] = 1
    from pvtt.compose import box_of_mask, dilate

    result = backend.propagate(clip6, None, masks, tracks, InsertResult(frame, alpha, box_of_mask(alpha > 0)))
    assert result.frames.shape == clip6.frames.shape and (result.frames[0] == frame).all()
    assert all(14 <= e["b"][0] <= 25 and 10 <= e["b"][1] <= 21 for e in result.info["points"])
    outside = ~dilate(np.logical_or(masks, alpha[None] > 0), 2 + 2)
    assert (result.frames[1:][outside[1:]] == clip6.frames[1:][outside[1:]]).all()


def test_propagate_needs_tracks(svd, clip6):
    backend = points_backend(svd)
    with pytest.raises(ValueError, match="tracked points"):
        backend.propagate(clip6, None, product_mask(clip6.frames), None, clip6.frames[0])
    empty = Tracks(np.zeros((6, 0, 2), np.float32), np.zeros((6, 0), bool))
    with pytest.raises(ValueError, match="tracked points"):
        backend.propagate(clip6, None, product_mask(clip6.frames), empty, clip6.frames[0])


def test_the_clips_registration_is_reusable_and_round_trips(svd, clip6, tmp_path):
    """A registration fitted once per clip (the points_registration stage's artifact) gives a pair exactly what
    fitting it inside the pair gives; it survives the safetensors round trip."""
    from pvtt.propagate.videoswap import load_registration, save_registration

    backend = points_backend(svd, min_similarity=-1.0)
    masks = product_mask(clip6.frames)
    tracks = moving_tracks(masks, count=3)
    state = backend.register(clip6, tracks)
    assert state["embeddings"].shape[0] == 3 and len(state["losses"]) == SMALL["train_steps"]
    loaded = load_registration(save_registration(state, tmp_path / "registration.safetensors"))
    assert state.keys() == loaded.keys() and all(torch.equal(state[k], loaded[k]) for k in state)
    inside = backend.propagate(clip6, None, masks, tracks, clip6.frames[0])
    cached = backend.propagate(clip6, None, masks, tracks, clip6.frames[0],
                               registration=tmp_path / "registration.safetensors")
    assert np.array_equal(inside.frames, cached.frames)
    assert cached.info["loss_last"] == inside.info["loss_last"]
