"""motion-lora: one LoRA per clip or per chunk (lora_scope), the LoRA file, letterboxed frames, and the LoRA stage
for i2vedit (tiny SVD on the CPU, seconds)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")


from pvtt.compose import Letterbox, chunk_spans  # noqa: E402
from pvtt.propagate import I2VEditSettings, MotionLoraSettings, PropagateSettings, lora_settings  # noqa: E402
from pvtt.propagate.motion_lora import MotionLoraPropagator, load_loras, save_loras  # noqa: E402
from pvtt.types import Clip  # noqa: E402

SMALL = dict(device="cpu", height=32, width=32, train_steps=1, train_frames=3, num_frames=4, inference_steps=1,
             rank=4, lr=1e-2)


def backend_of(svd, **kw):
    backend = MotionLoraPropagator(**{**SMALL, **kw})
    backend.setup(model=svd)
    return backend


def portrait_clip(frames: int = 3, height: int = 64, width: int = 32) -> Clip:
    y, x = np.mgrid[0:height, 0:width]
    video = np.stack([np.stack([(x * 8 + 5 * t) % 200 + 40, (y * 4) % 200 + 40, np.full_like(x, 120 + t)], -1)
                      for t in range(frames)]).astype(np.uint8)
    return Clip("portrait", video, 20.0)


def differ(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)


# --- lora_scope ------------------------------------------------------------------------------------------
def test_chunk_scope_trains_one_lora_per_chunk_on_its_frames(svd, small_clip, monkeypatch):
    backend = backend_of(svd, lora_scope="chunk", train_steps=2)
    spans = chunk_spans(small_clip.num_frames, 4, 1)
    assert backend.chunks(small_clip.num_frames) == spans == [(0, 4), (3, 7), (6, 9)]
    seen = []
    real = MotionLoraPropagator.train_lora

    def spy(self, clip, on_step=None):
        seen.append(clip.frames)
        return real(self, clip, on_step)

    monkeypatch.setattr(MotionLoraPropagator, "train_lora", spy)
    steps = []
    loras = backend.train_loras(small_clip, on_step=lambda i, loss: steps.append(i))
    assert len(loras) == len(spans) == len(seen)
    for frames, (start, stop) in zip(seen, spans):
        assert np.array_equal(frames, small_clip.frames[start:stop])  # chunk k's LoRA saw only span k
    assert differ(loras[0], loras[1]) and differ(loras[1], loras[2]) and differ(loras[0], loras[2])
    assert steps == list(range(3 * 2))
    assert len(backend.last_losses) == 6 and [len(c) for c in backend.chunk_losses] == [2, 2, 2]
    assert backend.last_losses == [x for c in backend.chunk_losses for x in c]


def test_clip_scope_trains_one_lora(svd, small_clip):
    backend = backend_of(svd)
    assert backend.settings.lora_scope == "clip"
    loras = backend.train_loras(small_clip)
    assert len(loras) == 1 and len(backend.last_losses) == 1 and backend.chunk_losses == [backend.last_losses]
    assert backend.lora_for_chunk(loras, 2) is loras[0]


def test_save_and_load_loras_round_trip(tmp_path):
    states = [{"a.lora_A.weight": torch.randn(4, 8), "a.lora_B.weight": torch.randn(8, 4) + k} for k in range(3)]
    path = save_loras(states, tmp_path / "x" / "lora.safetensors")
    assert path.exists() and not list(path.parent.glob("*.tmp"))
    from safetensors.torch import load_file

    assert sorted(load_file(str(path))) == sorted(f"chunk{k}.{n}" for k in range(3) for n in states[0])
    loaded = load_loras(path)
    assert len(loaded) == 3
    for a, b in zip(loaded, states):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    from safetensors.torch import save_file

    save_file({"a.lora_A.weight": torch.zeros(2)}, str(tmp_path / "old.safetensors"))
    with pytest.raises(ValueError, match="chunk"):
        load_loras(tmp_path / "old.safetensors")


def fake_pipeline(svd, monkeypatch, size=(32, 32)):
    """The pipeline call returns random frames (the LoRA plumbing around it stays real)."""
    rng = np.random.default_rng(0)

    class Out:
        def __init__(self, n):
            self.frames = [rng.random((n,) + size + (3,)).astype(np.float32)]

    monkeypatch.setattr(type(svd), "__call__", lambda self, *a, num_frames, **k: Out(num_frames))


def test_generate_uses_chunk_k_lora_for_chunk_k(svd, small_clip, monkeypatch, tmp_path):
    backend = backend_of(svd, lora_scope="chunk")
    backend._add_adapter()
    base = backend._lora_state()
    backend._disable_adapter()
    loras = [{k: v + i if "lora_B" in k else v for k, v in base.items()} for i in range(1, 4)]  # one per chunk
    fake_pipeline(svd, monkeypatch)
    used = []
    real = MotionLoraPropagator.use_lora
    monkeypatch.setattr(MotionLoraPropagator, "use_lora", lambda self, state: used.append(id(state)) or real(self, state))
    out = backend.generate(small_clip.frames[0], loras, small_clip.num_frames)
    assert out.shape == small_clip.frames.shape and out.dtype == np.uint8
    assert used == [id(x) for x in loras]
    used.clear()
    backend.generate(small_clip.frames[0], loras[:1], small_clip.num_frames)  # one LoRA: every chunk
    assert used == [id(loras[0])] * 3
    with pytest.raises(ValueError, match="chunk LoRAs"):
        backend.generate(small_clip.frames[0], loras[:2], small_clip.num_frames)
    # the artifact path works the same way (propagate's lora=path)
    used.clear()
    backend.generate(small_clip.frames[0], save_loras(loras, tmp_path / "l.safetensors"), small_clip.num_frames)
    assert len(used) == 3 and len(set(used)) == 3


# --- letterbox -------------------------------------------------------------------------------------------
def test_the_model_sees_letterboxed_frames(svd, monkeypatch):
    clip = portrait_clip()  # 64x32 portrait → model 32x64 landscape: bars left and right
    backend = backend_of(svd, height=32, width=64, train_steps=1, num_frames=3)
    box = backend.letterbox(clip.height, clip.width)
    assert box == Letterbox(64, 32, 32, 64) and box.padded == (64, 128) and box.offset == (0, 48)
    left, right = 24, 40  # the content's columns at model size: width 16 = 32 * (32 / 64), aspect kept
    encoded = []
    real_encode = svd.vae.encode
    monkeypatch.setattr(svd.vae, "encode", lambda x, *a, **k: encoded.append(x.detach().clone()) or real_encode(x, *a, **k))
    loras = backend.train_loras(clip)
    pixels = encoded[0]  # the clean latents' input: every frame of the clip, in [-1, 1]
    assert pixels.shape == (3, 3, 32, 64)
    assert (pixels[..., :left] == -1).all() and (pixels[..., right:] == -1).all()
    expected = torch.from_numpy(box.to_model(clip.frames)).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.allclose(pixels, expected) and (pixels[..., left:right] > -1).any()

    seeds = []
    pipe_class = type(svd)
    real_call = pipe_class.__call__
    monkeypatch.setattr(pipe_class, "__call__", lambda self, image, *a, **k: seeds.append(np.asarray(image))
                        or real_call(self, image, *a, **k))
    result = backend.propagate(clip, None, np.zeros(clip.frames.shape[:3], bool), None, clip.frames[0], lora=loras)
    assert result.frames.shape == clip.frames.shape  # back at the clip's size and aspect
    assert len(seeds) == 1 and seeds[0].shape == (32, 64, 3)
    assert (seeds[0][:, :left] == 0).all() and (seeds[0][:, right:] == 0).all()
    assert np.array_equal(seeds[0], box.to_model(clip.frames[:1])[0])


def test_generated_frames_come_back_through_from_model(svd, monkeypatch):
    clip = portrait_clip(frames=3)
    backend = backend_of(svd, height=32, width=64, num_frames=3, keep_source=False)
    box = backend.letterbox(clip.height, clip.width)
    fake = np.random.default_rng(0).random((3, 32, 64, 3)).astype(np.float32)

    class Out:
        frames = [fake]

    monkeypatch.setattr(type(svd), "__call__", lambda self, *a, **k: Out())
    out = backend.generate(clip.frames[0], None, 3)
    assert out.shape == clip.frames.shape
    assert np.array_equal(out, box.from_model(np.clip(fake * 255 + 0.5, 0, 255).astype(np.uint8)))


# --- settings, stage and pipeline for i2vedit -----------------------------------------------------------
def test_i2vedit_settings_survive_the_motion_lora_backend():
    settings = I2VEditSettings(num_frames=5, overlap=2, lora_scope="chunk", device="cpu")
    backend = MotionLoraPropagator(settings)
    assert type(backend.settings) is I2VEditSettings and backend.settings.overlap == 2
    assert backend.chunks(9) == chunk_spans(9, 5, 2)
    assert {"lora_scope", "num_frames", "overlap"} <= set(backend.training_settings())
    assert type(pickle.loads(pickle.dumps(backend)).settings) is I2VEditSettings
    plain = MotionLoraPropagator(MotionLoraSettings(num_frames=5))
    assert plain.chunks(9) == chunk_spans(9, 5, 1) and "num_frames" not in plain.training_settings()
    assert "num_frames" in MotionLoraPropagator(lora_scope="chunk").training_settings()


def test_the_lora_stage_runs_for_i2vedit(tmp_path):
    from pvtt.config import load_config
    from pvtt.weights.required import required_models
    from pvtt.pipeline import RunSummary, _strategy_steps
    from pvtt.store import Workspace

    class Runner:
        def __init__(self):
            self.stages = []

        def run(self, stage, items, name):
            self.stages.append((name, stage))
            return []

    ws = Workspace(tmp_path / "ws")
    for backend, section, runs in [("i2vedit", "i2vedit", True), ("motion-lora", "motion_lora", True),
                                   ("warp", None, False)]:
        config = load_config(None, [f"propagate.backend={backend}", "propagate.i2vedit.overlap=2"])
        settings = lora_settings(config.propagate)
        assert settings is (getattr(config.propagate, section) if section else None)
        runner = Runner()
        _strategy_steps(ws, config, runner, RunSummary(ws.root), [])
        assert [name for name, _ in runner.stages] == (["motion_lora"] if runs else [])
        if runs:
            stage = runner.stages[0][1]
            assert stage.backend.settings == settings and type(stage.backend.settings) is type(settings)
        keys = {m.key for m in required_models(config)}
        assert ("propagate.i2vedit.model" in keys) == (backend == "i2vedit")
    assert isinstance(PropagateSettings().i2vedit, MotionLoraSettings)
