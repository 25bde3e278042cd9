"""The VLM's caption and instruct stages as a build runs them, on the GPU: batched across items against one at a time.

Qwen2.5-VL-7B at full size with random weights (``full_size.qwen25_vl_7b``; a word-level tokenizer, so whatever
it generates decodes), bf16, the build's default VLM settings (16 frames at 448 px, 256 caption tokens, 96
instruction tokens) except ``batch_size``. ``--clips`` synthetic 101-frame 720x960 clips are written to a
workspace; the caption stage runs over them and the instruct stage (text only: the caption and B's
description) over one pair per clip, both through
``LocalRunner`` (what ``pvtt build`` calls), first with ``vlm.batch_size: 1`` (the baseline, same run) then with
``--batch``. Random weights never emit the end token, so every answer runs to its token limit: the seconds are
an upper bound of what real answers (shorter) take. Seconds per clip are wall time over the stage divided by the
clips; the model is loaded before timing.

    python3 benchmarks/bench_vlm_stages.py --clips 4 --batch 4 --out vlm_stages.json
    python3 benchmarks/bench_vlm_stages.py --clips 64 --baseline-clips 2 --batch 16 32 64 --out vlm_stages.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
from full_size import qwen25_vl_7b, word_tokenizer  # noqa: E402

from pvtt.demo import render_template  # noqa: E402
from pvtt.items import ClipItem, ProductItem  # noqa: E402
from pvtt.media.video import write_video  # noqa: E402
from pvtt.pairing import PairItem  # noqa: E402
from pvtt.runners.local import LocalRunner  # noqa: E402
from pvtt.stages.vlm import CaptionStage, InstructStage  # noqa: E402
from pvtt.store import Workspace  # noqa: E402
from pvtt.types import Status  # noqa: E402
from pvtt.vlm import VlmSettings  # noqa: E402
from pvtt.vlm.qwen import QwenVLM  # noqa: E402


def write_clips(ws: Workspace, count: int, cache: Path) -> list[ClipItem]:
    """``count`` clips in ``ws``, copied from ``cache`` where an earlier run wrote them (rendering and encoding
    a clip takes seconds; every third clip is the same)."""
    folder = ws.root / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(count):
        if not (cache / f"c{i % 3}.mp4").exists():  # three templates; random weights see no difference
            frames = render_template(i % 3, i, frames_per_shot=101)[:101]
            write_video(cache / f"c{i % 3}.mp4", frames, 20.0, preset="ultrafast")
        shutil.copy(cache / f"c{i % 3}.mp4", folder / f"c{i}.mp4")
        h, w = 720, 960
        clips.append(ClipItem(f"c{i}", f"t{i}", f"clips/c{i}.mp4", f"norm-c{i}", 20.0, w, h, 101, 0, 0, 0.0,
                              description="a ceramic mug"))
    return clips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--batch", type=int, nargs="+", default=[4], help="vlm.batch_size values after the baseline")
    parser.add_argument("--baseline-clips", type=int, default=None,
                        help="clips of the one-at-a-time baseline (default: --clips); seconds are per clip")
    parser.add_argument("--static-cache", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="the test suite's tiny Qwen on the CPU (plumbing only)")
    parser.add_argument("--out", default="vlm_stages.json")
    args = parser.parse_args()
    if args.tiny:
        sys.path.insert(0, str(HERE.parent / "tests" / "models"))
        from tiny_models import tiny_qwen, tiny_tokenizer

        model, tokenizer, device, extra = tiny_qwen(), tiny_tokenizer(), "cpu", {"frame_size": 56, "num_frames": 2}
    else:
        model = qwen25_vl_7b()
        tokenizer, device, extra = word_tokenizer(model.config.text_config.vocab_size), "cuda", {}
    cuda = device == "cuda"
    root = Path("/tmp/vlm_stages")
    results = {"device": torch.cuda.get_device_name() if cuda else "cpu", "clips": args.clips, "runs": []}
    for batch in (1, *args.batch):
        shutil.rmtree(root, ignore_errors=True)
        ws = Workspace(root)
        clips = write_clips(ws, args.baseline_clips or args.clips if batch == 1 else args.clips,
                            Path("/tmp/vlm_stages_clips"))
        product = ProductItem("B", "b.png", "kb", "kitchen", "bottle", "a red glass bottle")
        pairs = [PairItem(f"{c.id}__B", c, product, "medium", 0.5, "") for c in clips]
        settings = VlmSettings(device=device, dtype="bf16" if cuda else "fp32", batch_size=batch,
                               static_cache=args.static_cache, **extra)
        vlm = QwenVLM(settings)
        vlm.setup(model=model, processor=tokenizer)
        runner = LocalRunner(workers=1, progress=False)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        run = {"batch_size": batch}
        captions = CaptionStage(ws, settings)
        captions.backend = vlm  # the model built above, already set up
        for name, stage, items in (("caption", captions, clips),
                                   ("instruct", InstructStage(ws, settings, backend=vlm), pairs)):
            if cuda:
                torch.cuda.synchronize()
            start = time.perf_counter()
            records = runner.run(stage, items)
            if cuda:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - start
            run[f"{name}_s_per_item"] = round(seconds / len(items), 3)
            run[f"{name}_status"] = sorted({r.status.value for r in records})
            if any(r.status is not Status.DONE for r in records):
                run[f"{name}_reasons"] = [r.reason for r in records if r.status is not Status.DONE][:2]
        run["caption_plus_instruction_s_per_clip"] = round(run["caption_s_per_item"] + run["instruct_s_per_item"], 3)
        run["peak_gib"] = round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if cuda else 0.0
        results["runs"].append(run)
        print(json.dumps(run), flush=True)
    base = results["runs"][0]["caption_plus_instruction_s_per_clip"]
    results["speedup"] = {run["batch_size"]: round(base / run["caption_plus_instruction_s_per_clip"], 2)
                          for run in results["runs"][1:]}
    print(json.dumps({"speedup": results["speedup"]}), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
