"""`prepare` end to end: bad input becomes per-item records, finished work is kept, re-runs resume."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pvtt.config import load_config
from pvtt.pipeline import prepare
from pvtt.store import Workspace
from pvtt.testmedia import multi_shot_video, panning_frames, textured_background, write_video
from pvtt.types import Status

FAST = ["normalize.short_side=48", "normalize.fps=10", "normalize.min_frames=3", "shots.min_duration=0.3",
        "shots.min_gap=0.3", "media.preset=ultrafast", "runner.progress=false"]


def make_messy_catalog(root: Path) -> Path:
    """A plain-folder catalog with one of each kind of bad input next to good ones."""
    videos, images = root / "videos", root / "images"
    videos.mkdir(parents=True)
    images.mkdir()
    multi_shot_video(videos / "good.mp4", [24, 20], height=48, width=64)
    frames = panning_frames(textured_background(128, 128, 3), 24, 48, 64)
    write_video(videos / "rotated.mp4", frames, rotation=90)
    write_video(videos / "vfr.mp4", frames[:12], times=[0.0, 0.05, 0.3, 0.35, 0.4, 0.6, 0.9, 1.0, 1.05, 1.2, 1.5, 1.9])
    odd = panning_frames(textured_background(128, 128, 4), 24, 67, 101)
    write_video(videos / "odd.mp4", odd[:, :66, :100])  # libx264 needs even sides: 100x66 stored, odd target below
    write_video(videos / "big.mp4", panning_frames(textured_background(300, 300, 5), 12, 144, 192))
    write_video(videos / "oneframe.mp4", frames[:1])
    (videos / "empty.mp4").write_bytes(b"")
    (videos / "text.mp4").write_text("not a video\n" * 100)
    good = (videos / "good.mp4").read_bytes()
    (videos / "truncated.mp4").write_bytes(good[: len(good) // 3])
    Image.fromarray(textured_background(40, 30, 6)).save(images / "prod.png")
    (images / "fake.jpg").write_text("not an image")
    return root


def _records(ws: Workspace, stage: str) -> dict:
    return {r.item_id: r for r in ws.records(stage)}


def _work(ws: Workspace, stages: list[str], folders: list[str]) -> dict[Path, int]:
    """mtimes of the final records (done or rejected) of ``stages`` and of every file under ``folders``: a run that
    reuses this work leaves them all as they were."""
    files = [ws.record_path(s, r.item_id) for s in stages for r in ws.records(s) if r.status is not Status.FAILED]
    files += [p for folder in folders for p in (ws.root / folder).rglob("*") if p.is_file()]
    return {p: p.stat().st_mtime_ns for p in files}


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    return make_messy_catalog(tmp_path_factory.mktemp("catalog"))


def test_every_bad_input_is_a_readable_per_item_record(messy, tmp_path):
    config = load_config(None, FAST + ["media.max_pixels=20000"])
    summary = prepare(messy, tmp_path / "ws", config)
    ws = Workspace(tmp_path / "ws")
    norm = _records(ws, "normalize")
    assert {k for k, r in norm.items() if r.status is Status.DONE} == {"good", "rotated", "vfr", "odd"}
    assert norm["oneframe"].status is Status.REJECTED and "no usable shot" in norm["oneframe"].reason
    assert norm["empty"].status is Status.FAILED and "empty (0 bytes)" in norm["empty"].reason
    assert norm["text"].status is Status.FAILED and "not a readable video" in norm["text"].reason
    assert norm["truncated"].status is Status.FAILED
    assert norm["big"].status is Status.FAILED and "media.max_pixels" in norm["big"].reason
    products = _records(ws, "product")
    assert products["prod"].status is Status.DONE and products["fake"].status is Status.FAILED
    assert "not an image" in products["fake"].reason
    assert summary.counts["normalize"]["done"] == 4
    # the rotated phone video comes out portrait, and every clip is a multiple of 16
    rotated = norm["rotated"].outputs["clips"][0]
    assert rotated["height"] > rotated["width"]
    for record in norm.values():
        for clip in record.outputs.get("clips", []):
            assert clip["width"] % 16 == 0 and clip["height"] % 16 == 0
            assert (ws.root / clip["path"]).is_file()
    # only normalized clips are mp4s in the workspace: originals are referenced, not copied
    mp4s = {str(p.relative_to(ws.root)) for p in ws.root.rglob("*.mp4")}
    assert mp4s == {c["path"] for r in norm.values() for c in r.outputs.get("clips", [])}


def test_rerun_is_cached_and_a_changed_setting_redoes_only_what_depends_on_it(messy, tmp_path):
    config = load_config(None, FAST)
    prepare(messy, tmp_path / "ws", config)
    ws = Workspace(tmp_path / "ws")
    first = _records(ws, "normalize")["good"]
    done = _work(ws, ["normalize", "product"], ["clips", "products"])
    assert len(done) >= 10  # not vacuous: 7 final records, 6 clips, the product image
    products = _work(ws, ["product"], ["products"])
    prepare(messy, tmp_path / "ws", config)
    assert _work(ws, ["normalize", "product"], ["clips", "products"]) == done  # nothing finished was redone
    # change the output fps: clips are redone, shots are reused
    summary = prepare(messy, tmp_path / "ws", load_config(None, FAST + ["normalize.fps=5"]))
    again = _records(ws, "normalize")["good"]
    assert again.key != first.key and again.metrics["cuts_cached"] is True
    assert again.outputs["clips"][0]["num_frames"] < first.outputs["clips"][0]["num_frames"]
    assert summary.counts["product"]["done"] == 1
    assert _work(ws, ["product"], ["products"]) == products  # products unaffected (cached)


def test_process_pool_gives_the_same_records(messy, tmp_path):
    one = prepare(messy, tmp_path / "a", load_config(None, FAST))
    two = prepare(messy, tmp_path / "b", load_config(None, FAST + ["runner.workers=2"]))
    assert one.counts == two.counts
    a, b = _records(Workspace(tmp_path / "a"), "normalize"), _records(Workspace(tmp_path / "b"), "normalize")
    assert {k: (r.status, r.key, r.outputs.get("clips")) for k, r in a.items()} == {
        k: (r.status, r.key, r.outputs.get("clips")) for k, r in b.items()}


def _digest(ws_root: Path) -> dict:
    out = {}
    for path in sorted(ws_root.rglob("*.mp4")):
        out[str(path.relative_to(ws_root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.slow
def test_sigkill_midway_then_rerun_equals_an_uninterrupted_run(tmp_path):
    catalog = tmp_path / "cat"
    (catalog / "videos").mkdir(parents=True)
    for i in range(6):
        multi_shot_video(catalog / "videos" / f"v{i}.mp4", [40, 30], height=96, width=128, seed=i)
    args = [sys.executable, "-m", "pvtt.cli", "-q", "prepare", "--catalog", str(catalog), "--no-progress"]
    fast = [a for opt in FAST for a in ("--set", opt)]
    subprocess.run(args + ["--out", str(tmp_path / "clean")] + fast, check=True, capture_output=True)

    process = subprocess.Popen(args + ["--out", str(tmp_path / "killed")] + fast,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "killed" / "records" / "normalize"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(records.glob("*.json"))) < 2:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_done = len(list(records.glob("*.json")))
    assert 2 <= killed_done < 6, "the kill should land midway"

    subprocess.run(args + ["--out", str(tmp_path / "killed")] + fast, check=True, capture_output=True)
    assert _digest(tmp_path / "killed") == _digest(tmp_path / "clean")
    clean = {r.item_id: (r.key, r.outputs) for r in Workspace(tmp_path / "clean").records("normalize")}
    resumed = {r.item_id: (r.key, r.outputs) for r in Workspace(tmp_path / "killed").records("normalize")}
    assert resumed == clean
    assert not list((tmp_path / "killed").rglob("*.tmp-*"))


def test_catalog_problems_are_recorded_not_raised(tmp_path):
    root = tmp_path / "bench"
    (root / "annotations").mkdir(parents=True)
    (root / "videos").mkdir()
    multi_shot_video(root / "videos" / "A.mp4", [30], height=48, width=64)
    samples = [{"id": "A", "template_video": {"path": "videos/A.mp4"}},
               {"id": "A", "template_video": {"path": "videos/A.mp4"}},
               {"id": "B", "template_video": {"path": "videos/B.mp4"}}]
    (root / "annotations" / "metadata.json").write_text(json.dumps({"samples": samples}))
    prepare(root, tmp_path / "ws", load_config(None, FAST))
    ingest = _records(Workspace(tmp_path / "ws"), "ingest")
    assert ingest["template-A"].status is Status.DONE
    assert ingest["template-B"].status is Status.FAILED and "not found" in ingest["template-B"].reason
    assert _records(Workspace(tmp_path / "ws"), "normalize")["A"].status is Status.DONE
