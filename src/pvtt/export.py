"""Export: the finished dataset in the layout of DESIGN.md, its manifest, statistics, card and review page.

::

    <out>/
      videos/source/<clip_id>.mp4          videos/background/<clip_id>.mp4
      videos/synthesized/<pair_id>.mp4     masks/<clip_id>.mp4
      images/target/<product_id>.png       tracks/<clip_id>.npz
      images/target/<product_id>_view<k>.png  images/target/sources.json   (video products: extra views)
      images/keyframe/<pair_id>.png
      annotations/pairs.jsonl  annotations/pairs.parquet  annotations/statistics.json
      shards/pvtt-000000.tar …             (optional WebDataset shards)
      report/index.html                    README.md (the dataset card)

Files are hard-linked from the workspace when it is on the same file system (copied otherwise), so
an export costs almost no space or time and can be redone at will. Only kept pairs enter the
dataset; rejected pairs appear on the review page with their reasons.

:func:`pair_rows` makes the manifest rows of the synthesized pairs (one per pair and export mode: ``replace``,
``reversed``, ``double-insert``) with the workspace files each row exports; :func:`export_dataset` writes them.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tarfile
from collections import Counter
from pathlib import Path
from typing import Any

from pvtt import artifacts
from pvtt.instruction import make_instruction
from pvtt.items import ClipItem
from pvtt.pairing import PairItem
from pvtt.review_page import write_review_page
from pvtt.store import Workspace, atomic_path, write_json, write_text
from pvtt.types import Status

# row["artifacts"] key -> (dataset folder, name from which id, suffix)
LAYOUT = {
    "source_video": ("videos/source", "clip_id", ".mp4"),
    "background_video": ("videos/background", "clip_id", ".mp4"),
    "edited_video": ("videos/synthesized", "pair_id", ".mp4"),
    "mask_video": ("masks", "clip_id", ".mp4"),
    "tracks": ("tracks", "clip_id", ".npz"),
    "target_image": ("images/target", "product_id", ".png"),
    "target_view": ("images/target", "product_id", ".png"),  # dataset_path("target_view", f"{id}_view{k}")
    "keyframe": ("images/keyframe", "pair_id", ".png"),
    "depth_video": ("depth", "clip_id", ".mp4"),
    "overlay_video": ("report/media", "pair_id", "_overlay.mp4"),
}


def dataset_path(field: str, item_id: str) -> str:
    """Where an artifact of kind ``field`` (a key of :data:`LAYOUT`) for ``item_id`` goes in the dataset."""
    folder, _, suffix = LAYOUT[field]
    return f"{folder}/{item_id}{suffix}"


def pair_rows(ws: Workspace, pairs: list[PairItem], config: Any) -> list[dict]:
    """Manifest rows of every synthesized pair in each of ``config.export.modes``, with their artifacts."""

    def clip_artifacts(clip: ClipItem) -> dict:
        art = {"source_video": (ws.abs(clip.path), dataset_path("source_video", clip.id))}
        for stage, key, field in (("erase", "background_path", "background_video"),
                                  ("segment", "mask_video_path", "mask_video"), ("track", "tracks_path", "tracks"),
                                  ("depth", "depth_path", "depth_video")):
            record = ws.read_record(stage, clip.id)
            if record is not None and key in record.outputs:
                art[field] = (ws.abs(record.outputs[key]), dataset_path(field, clip.id))
        return art

    def target_artifacts(target, product_id: str) -> dict:
        """The target image and, for a video product, its extra views (``images/target/<id>_view<k>.png``)."""
        if target is None:
            return {}
        art = {"target_image": (ws.abs(target.outputs["cutout_path"]), dataset_path("target_image", product_id))}
        for k, path in enumerate(target.outputs.get("view_paths", []), 1):
            art[f"target_view_{k}"] = (ws.abs(path), dataset_path("target_view", f"{product_id}_view{k}"))
        return art

    replace: dict[str, dict] = {}
    for pair in pairs:
        record = ws.read_record("synthesize", pair.id)
        if record is None or record.status is Status.FAILED:
            continue
        clip, product = pair.clip, pair.product
        target = artifacts.target(ws, product.id, required=False)  # B's image: the photo's cutout, else the video's
        own = artifacts.target(ws, clip.product_id, required=False) if clip.product_id else None
        metrics = record.metrics
        row = {
            "pair_id": pair.id, "mode": "replace", "clip_id": clip.id, "template_id": clip.template_id,
            "product_id": product.id, "source_product_id": clip.product_id,
            "source_category": clip.category, "source_subcategory": clip.subcategory,
            "target_category": product.category, "target_subcategory": product.subcategory,
            "difficulty": pair.difficulty, "shape_similarity": pair.shape_similarity,
            "instruction": pair.instruction, "strategy": metrics.get("strategy"),
            "strategy_reason": metrics.get("strategy_reason"), "scores": metrics.get("scores", {}),
            "box_b": metrics.get("box_b"),
            "verdict": "keep" if record.status is Status.DONE else "reject",
            "reasons": metrics.get("reasons") or ([record.reason] if record.reason else []),
            "num_frames": clip.num_frames, "fps": clip.fps, "width": clip.width, "height": clip.height,
            "settings_hash": record.key,
        }
        if pair.caption:  # pairing.instruction: vlm — the VLM's caption of the source clip
            row["caption"] = pair.caption
        art = clip_artifacts(clip)
        row["target_source"] = target.outputs["source"] if target is not None else None
        art.update(target_artifacts(target, product.id))
        out = record.outputs
        if "edited_path" in out:
            art["edited_video"] = (ws.abs(out["edited_path"]), dataset_path("edited_video", pair.id))
            art["keyframe"] = (ws.abs(out["keyframe_path"]), dataset_path("keyframe", pair.id))
            art["overlay_video"] = (ws.abs(out["overlay_path"]), dataset_path("overlay_video", pair.id))
        row["artifacts"] = art
        replace[pair.id] = row
        if "reversed" in config.export.modes and "edited_path" in out and own is not None:
            # the edited clip is the source and the real footage the target, so the target side is never synthetic
            rev_id = f"{pair.id}__reversed"
            rev = dict(row, pair_id=rev_id, mode="reversed", product_id=clip.product_id,
                       source_product_id=product.id, target_category=clip.category,
                       target_subcategory=clip.subcategory, source_category=product.category,
                       source_subcategory=product.subcategory, target_source=own.outputs["source"],
                       instruction=_reverse_instruction(pair, config))
            rev.pop("caption", None)  # it describes the real clip, the target side here
            rev["artifacts"] = {
                "source_video": (ws.abs(out["edited_path"]), dataset_path("edited_video", pair.id)),
                "edited_video": (ws.abs(clip.path), dataset_path("source_video", clip.id)),
                **target_artifacts(own, clip.product_id),
                "overlay_video": art.get("overlay_video"),
            }
            replace[rev_id] = rev
    rows = list(replace.values())
    if "double-insert" in config.export.modes:
        rows += _double_insert_rows(ws, pairs, replace)
    return rows


def _reverse_instruction(pair: PairItem, config: Any) -> str:
    source = pair.product.description or pair.product.subcategory or pair.product.category
    target = pair.clip.description or pair.clip.subcategory or pair.clip.category
    return make_instruction(source, target, seed=config.pairing.seed + 7919)


def _double_insert_rows(ws: Workspace, pairs: list[PairItem], rows: dict[str, dict]) -> list[dict]:
    """(video with B → video with C) for two products B, C synthesized on the same clip: both sides synthetic,
    identical background and motion, so a model cannot learn to spot erase artifacts."""
    by_clip: dict[str, list[PairItem]] = {}
    for pair in pairs:
        row = rows.get(pair.id)
        if row is not None and "edited_video" in row["artifacts"]:
            by_clip.setdefault(pair.clip.id, []).append(pair)
    out = []
    for clip_pairs in by_clip.values():
        for b, c in zip(clip_pairs, clip_pairs[1:]):
            rb, rc = rows[b.id], rows[c.id]
            pair_id = f"{c.clip.id}__{b.product.id}__{c.product.id}"
            row = dict(rc, pair_id=pair_id, mode="double-insert", source_product_id=b.product.id,
                       source_category=b.product.category, source_subcategory=b.product.subcategory,
                       verdict="keep" if rb["verdict"] == rc["verdict"] == "keep" else "reject",
                       reasons=[f"source side: {r}" for r in rb["reasons"]] + rc["reasons"],
                       instruction=make_instruction(b.product.description or b.product.subcategory,
                                                    c.product.description or c.product.subcategory, seed=len(out)))
            row.pop("caption", None)  # it describes the real clip, on neither side here
            row["artifacts"] = dict(rc["artifacts"])
            row["artifacts"]["source_video"] = (rb["artifacts"]["edited_video"][0], dataset_path("edited_video", b.id))
            row["artifacts"]["edited_video"] = (rc["artifacts"]["edited_video"][0], dataset_path("edited_video", c.id))
            row["artifacts"].pop("keyframe", None)
            out.append(row)
    return out


def _place(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (copy across file systems); replace whatever ``dst`` was."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


def _reason_kind(reason: str) -> str:
    """The kind of a rejection reason, for counting: its text before the first colon, frame numbers dropped."""
    return re.sub(r" at frame \d+", "", reason.split(":")[0]).strip()


def _statistics(rows: list[dict[str, Any]], kept: list[dict[str, Any]]) -> dict[str, Any]:
    def table(key: str) -> dict[str, dict[str, int]]:
        out: dict[str, Counter] = {}
        for row in rows:
            out.setdefault(str(row.get(key) or "unknown"), Counter())[row.get("verdict") or "unknown"] += 1
        return {k: dict(v) for k, v in sorted(out.items())}

    score_names = sorted({k for row in kept for k in row.get("scores", {})})
    means = {}
    for name in score_names:
        values = [row["scores"][name] for row in kept if isinstance(row["scores"].get(name), (int, float))]
        if values:
            means[name] = round(sum(values) / len(values), 4)
    return {
        "pairs": len(rows),
        "kept": len(kept),
        "rejected": len(rows) - len(kept),
        "clips": len({r["clip_id"] for r in kept}),
        "products": len({r["product_id"] for r in kept}),
        "frames": sum(int(r.get("num_frames") or 0) for r in kept),
        "by_category": table("target_category"),
        "by_difficulty": table("difficulty"),
        "by_mode": table("mode"),
        "by_strategy": table("strategy"),
        "by_target_source": table("target_source"),
        # distinct products of the kept pairs by where their target image comes from (photo / video)
        "target_products": dict(Counter({r["product_id"]: r.get("target_source") or "unknown" for r in kept}.values())),
        "rejection_reasons": dict(Counter(_reason_kind(reason) for r in rows if r.get("verdict") != "keep"
                                          for reason in r.get("reasons", [])).most_common()),
        "mean_scores_of_kept": means,
    }


def _card(stats: dict[str, Any], settings_hash: str) -> str:
    def md_table(title: str, table: dict[str, dict[str, int]]) -> str:
        columns = sorted({c for row in table.values() for c in row})
        lines = [f"### {title}", "", "| | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        lines += [f"| {k} | " + " | ".join(str(v.get(c, 0)) for c in columns) + " |" for k, v in table.items()]
        return "\n".join(lines) + "\n"

    scores = "\n".join(f"| {k} | {v} |" for k, v in stats["mean_scores_of_kept"].items())
    reasons = "\n".join(f"| {k} | {v} |" for k, v in stats["rejection_reasons"].items()) or "| none | 0 |"
    targets = ", ".join(f"{n} from {'catalog photos' if k == 'photo' else 'template videos' if k == 'video' else k}"
                        for k, n in sorted(stats.get("target_products", {}).items())) or "none"
    return f"""# PVTT dataset (built by pvtt)

Product Video Template Transfer triplets: a source clip showing product A, a photo of product B, and the
same clip with A replaced by B (same camera motion, lighting and background), with the instruction, masks,
point tracks, the erased background and quality scores.

- pairs kept: **{stats['kept']}** of {stats['pairs']} built ({stats['rejected']} rejected by the judge)
- clips: {stats['clips']}, products: {stats['products']}, frames in kept pairs: {stats['frames']}
- target images: {targets}
- settings hash: `{settings_hash}`

## Files

| path | content |
| --- | --- |
| `videos/source/<clip_id>.mp4` | the source clip (normalized template shot) |
| `videos/synthesized/<pair_id>.mp4` | the edited clip |
| `videos/background/<clip_id>.mp4` | the source clip with the product erased |
| `masks/<clip_id>.mp4` | the source product's mask per frame (white = product) |
| `tracks/<clip_id>.npz` | semantic points on the source product: `points` (T, K, 2) x, y; `visible` (T, K) |
| `images/target/<product_id>.png` | the target product, RGBA cutout: from its catalog photo, or (`target_source: video` in the record) from its own template video's best frame when the photo could not be cut out cleanly |
| `images/target/<product_id>_view<k>.png` | extra reference views of a video product: crops of other frames |
| `images/target/sources.json` | per product: where its target image comes from (`photo` / `video`) and its files |
| `images/keyframe/<pair_id>.png` | the edited first frame |
| `annotations/pairs.jsonl`, `pairs.parquet` | one record per pair (ids, categories, difficulty, instruction, strategy, scores, verdict, files) |
| `annotations/statistics.json` | the numbers on this page |
| `report/index.html` | review page: source, edited and mask overlay side by side; open it in a browser |

{md_table("Pairs by target category and verdict", stats['by_category'])}
{md_table("Pairs by difficulty and verdict", stats['by_difficulty'])}
{md_table("Pairs by mode and verdict", stats['by_mode'])}
{md_table("Pairs by target image source and verdict", stats['by_target_source'])}
### Mean scores of kept pairs

| score | mean |
| --- | --- |
{scores}

### Rejection reasons

| reason | pairs |
| --- | --- |
{reasons}
"""


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> bool:
    """A flat Parquet copy of the manifest (scores as ``score_<name>`` columns); False without pyarrow."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    flat = []
    for row in rows:
        entry = {k: v for k, v in row.items() if k not in ("scores", "files", "reasons", "info")}
        entry.update({f"score_{k}": v for k, v in row.get("scores", {}).items()})
        entry["reasons"] = "; ".join(row.get("reasons", []))
        entry.update({f"file_{k}": v for k, v in row.get("files", {}).items()})
        flat.append(entry)
    # every row gets every column (None where it has none): pyarrow takes the columns from the first row only,
    # and rows differ (a video product's extra views, a depth video only some strategies make)
    columns = list(dict.fromkeys(key for entry in flat for key in entry))
    flat = [{key: entry.get(key) for key in columns} for entry in flat]
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(flat), tmp)
    return True


def _write_shards(out: Path, rows: list[dict[str, Any]], per_shard: int) -> list[str]:
    """WebDataset tars: per pair ``<pair_id>.{source.mp4, edited.mp4, target.png, keyframe.png, json}``."""
    names = []
    for start in range(0, len(rows), per_shard):
        name = f"shards/pvtt-{start // per_shard:06d}.tar"
        with atomic_path(out / name) as tmp, tarfile.open(tmp, "w") as tar:
            for row in rows[start:start + per_shard]:
                key = row["pair_id"].replace(".", "_")
                files = row["files"]
                for field, suffix in (("source_video", "source.mp4"), ("edited_video", "edited.mp4"),
                                      ("target_image", "target.png"), ("keyframe", "keyframe.png")):
                    if files.get(field):
                        tar.add(out / files[field], arcname=f"{key}.{suffix}")
                meta = json.dumps(row, default=str).encode()
                info = tarfile.TarInfo(f"{key}.json")
                info.size = len(meta)
                tar.addfile(info, io.BytesIO(meta))
        names.append(name)
    return names


def export_dataset(rows: list[dict[str, Any]], out: str | Path, settings_hash: str = "",
                   shard_size: int = 0, include_rejected: bool = False) -> dict[str, Any]:
    """Write the dataset for ``rows`` (pair records whose ``artifacts`` hold absolute workspace paths).

    Returns the statistics. Rows get a ``files`` mapping of dataset-relative paths.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    all_rows = []
    for row in rows:
        row = dict(row)
        files = {}
        keep = row.get("verdict") == "keep" or include_rejected
        for field, value in (row.pop("artifacts", None) or {}).items():
            if value is None:
                continue
            if isinstance(value, (list, tuple)):  # (source path, dataset path) chosen by the caller
                src, rel = value
            elif field in LAYOUT:
                folder, id_key, suffix = LAYOUT[field]
                src, rel = value, f"{folder}/{row[id_key]}{suffix}"
            else:
                continue
            if not keep and not rel.startswith("report/"):
                rel = f"report/rejected/{rel}"  # shown on the review page, not part of the dataset
            _place(Path(src), out / rel)
            files[field] = rel
        row["files"] = files
        all_rows.append(row)
    kept = [r for r in all_rows if r.get("verdict") == "keep" or include_rejected]
    stats = _statistics(all_rows, kept)
    annotations = out / "annotations"
    write_text(annotations / "pairs.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in kept))
    stats["parquet"] = _write_parquet(annotations / "pairs.parquet", kept)
    sources = {r["product_id"]: {"source": r.get("target_source"), "image": r["files"]["target_image"],
                                 "views": [r["files"][f"target_view_{k}"] for k in range(1, len(r["files"]) + 1)
                                           if f"target_view_{k}" in r["files"]]}
               for r in kept if r["files"].get("target_image")}
    if sources:
        write_json(out / "images" / "target" / "sources.json", dict(sorted(sources.items())))
    if shard_size > 0:
        stats["shards"] = _write_shards(out, kept, shard_size)
    write_json(annotations / "statistics.json", stats)
    write_text(out / "README.md", _card(stats, settings_hash))
    report_rows = []
    for row in all_rows:  # the page lives in report/: its media paths go up one level
        view = dict(row)
        view["files"] = {k: (v[len("report/"):] if v.startswith("report/") else f"../{v}")
                         for k, v in row["files"].items()}
        report_rows.append(view)
    page_stats = {k: v for k, v in stats.items() if k not in ("shards", "parquet")}
    write_review_page(out / "report" / "index.html", report_rows, page_stats, title="pvtt dataset review")
    return stats
