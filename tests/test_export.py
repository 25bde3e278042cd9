"""Export: the DESIGN layout, manifest + Parquet, statistics, dataset card, shards, and the review page."""

from __future__ import annotations

import json
import tarfile

import numpy as np
from PIL import Image

from pvtt.export import export_dataset
from pvtt.testmedia import panning_frames, textured_background, write_video


def _rows(tmp_path):
    ws = tmp_path / "ws"
    ws.mkdir()
    video = write_video(ws / "clip.mp4", panning_frames(textured_background(96, 96, 0), 6, 32, 48))
    Image.fromarray(np.zeros((8, 8, 4), np.uint8)).save(ws / "t.png")
    np.savez(ws / "tracks.npz", points=np.zeros((6, 2, 2)), visible=np.ones((6, 2), bool))
    rows = []
    for n, verdict in enumerate(["keep", "keep", "reject"]):
        rows.append({
            "pair_id": f"c{n}__p", "clip_id": f"c{n}", "product_id": "p", "verdict": verdict,
            "difficulty": "easy" if n else "hard", "mode": "replace", "target_category": "toys",
            "scores": {"psnr_bg": 30.0 + n}, "reasons": [] if verdict == "keep" else ["background: psnr 12 < 25"],
            "num_frames": 6,
            "artifacts": {"source_video": str(video), "edited_video": str(video), "target_image": str(ws / "t.png"),
                          "tracks": str(ws / "tracks.npz"), "keyframe": str(ws / "t.png")},
        })
    return rows


def test_layout_manifest_and_statistics(tmp_path):
    out = tmp_path / "ds"
    stats = export_dataset(_rows(tmp_path), out, settings_hash="abc", shard_size=1)
    for rel in ("videos/source/c0.mp4", "videos/synthesized/c1__p.mp4", "images/target/p.png", "tracks/c0.npz",
                "images/keyframe/c0__p.png", "annotations/pairs.parquet", "report/index.html", "README.md"):
        assert (out / rel).is_file(), rel
    assert not (out / "videos/synthesized/c2__p.mp4").exists()  # rejected: review page only
    assert (out / "report/rejected/videos/synthesized/c2__p.mp4").is_file()
    lines = [json.loads(x) for x in (out / "annotations/pairs.jsonl").read_text().splitlines()]
    assert [r["pair_id"] for r in lines] == ["c0__p", "c1__p"]
    assert lines[0]["files"]["edited_video"] == "videos/synthesized/c0__p.mp4"
    assert stats["kept"] == 2 and stats["rejected"] == 1
    assert stats["by_difficulty"] == {"easy": {"keep": 1, "reject": 1}, "hard": {"keep": 1}}
    assert stats["rejection_reasons"] == {"background": 1}
    import pyarrow.parquet as pq

    table = pq.read_table(out / "annotations/pairs.parquet")
    assert table.num_rows == 2 and "score_psnr_bg" in table.column_names
    with tarfile.open(out / stats["shards"][0]) as tar:
        assert sorted(tar.getnames()) == ["c0__p.edited.mp4", "c0__p.json", "c0__p.keyframe.png",
                                          "c0__p.source.mp4", "c0__p.target.png"]
    card = (out / "README.md").read_text()
    assert "pairs kept: **2** of 3" in card and "`abc`" in card
    page = (out / "report/index.html").read_text()
    assert "../videos/source/c0.mp4" in page and "rejected/videos/synthesized/c2__p.mp4" in page


def test_export_is_repeatable(tmp_path):
    rows = _rows(tmp_path)
    export_dataset(rows, tmp_path / "ds")
    export_dataset(rows, tmp_path / "ds")  # a second export over the first replaces files in place
    assert len((tmp_path / "ds/annotations/pairs.jsonl").read_text().splitlines()) == 2
