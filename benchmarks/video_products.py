"""Products from template videos on a built workspace: the frame `video_cutout` would choose for every template
with curated clips, its cutout and extra views, as contact sheets to look at. Reads the workspace only.

Usage: python benchmarks/video_products.py [WORKSPACE] [--out /tmp/video_products] [--hands none|mediapipe]
                                           [--views 3] [--per-sheet 5]
       → OUT/sheet_01.png …, OUT/<template>/{cutout,view_1,…,frame}.png, OUT/index.md

Each sheet row, one template: its catalog photo (with the photo cutout's verdict), the chosen frame with the
mask outlined (green) and hand pixels tinted (red, with --hands), then the cutout and its views over a
checkerboard (so background carried along shows). ``--hands mediapipe`` needs ``pip install 'pvtt[hands]'``.
Do not commit the sheets.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from pvtt import artifacts
from pvtt.config import VideoCutoutSettings
from pvtt.cutout import CutoutSettings, make_cutter
from pvtt.errors import RejectItem
from pvtt.items import curated_clips
from pvtt.media.image import write_png
from pvtt.stages.product import video_product
from pvtt.store import Workspace
from pvtt.types import ProductImage

TILE = 260  # row height


def _fit(image: np.ndarray, height: int = TILE, max_width: int = 2 * TILE) -> np.ndarray:
    scale = min(height / image.shape[0], max_width / image.shape[1])
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _on_checkerboard(rgba: np.ndarray) -> np.ndarray:
    h, w = rgba.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    board = np.where(((yy // 12 + xx // 12) % 2)[..., None] == 0, 235, 170).astype(np.float32) * np.ones(3)
    alpha = rgba[..., 3:4].astype(np.float32) / 255
    return (rgba[..., :3] * alpha + board * (1 - alpha)).astype(np.uint8)


def _label(tile: np.ndarray, lines: list[str]) -> np.ndarray:
    tile = np.ascontiguousarray(tile)
    for n, text in enumerate(lines):
        y = 16 + 16 * n
        cv2.putText(tile, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(tile, text, (4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def _row(tiles: list[np.ndarray]) -> np.ndarray:
    tiles = [np.pad(t, ((0, TILE - t.shape[0]), (0, 6), (0, 0)), constant_values=40) for t in tiles]
    return np.concatenate(tiles, axis=1)


def _sheet(rows: list[np.ndarray]) -> np.ndarray:
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 6), (0, width - r.shape[1]), (0, 0)), constant_values=40) for r in rows]
    return np.concatenate(rows, axis=0)


def _photo_tile(ws: Workspace, template_id: str, product_id: str | None, settings: CutoutSettings
                ) -> tuple[np.ndarray, str]:
    """The catalog photo, labelled with its cutout's verdict: the workspace's record, else the cutout run here."""
    if not product_id or artifacts.record(ws, "product", product_id, required=False) is None:
        return np.zeros((TILE, TILE, 3), np.uint8), "no photo"
    photo = artifacts.photo(ws, product_id)
    cutout = ws.read_record("cutout", product_id)
    if cutout is not None:
        verdict = f"photo cutout: {cutout.status.value}"
        if "confidence" in cutout.metrics:
            verdict += f" ({cutout.metrics['confidence']:.2f})"
    else:  # the workspace's build did not get that far: cut it out here (in memory)
        try:
            result = make_cutter(settings).cut_out(ProductImage(product_id, photo))
            rejected = result.low_confidence and settings.reject_low_confidence
            verdict = f"photo cutout (run here): {'rejected' if rejected else 'done'} ({result.confidence:.2f})"
        except RejectItem:
            verdict = "photo cutout (run here): rejected (no product)"
    return _label(_fit(photo[..., :3], max_width=TILE), [template_id, verdict[:40], verdict[40:]]), verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workspace", nargs="?", default="/work/runs/ws", type=Path)
    parser.add_argument("--out", default="/tmp/video_products", type=Path)
    parser.add_argument("--hands", default="none", choices=["none", "mediapipe"])
    parser.add_argument("--views", default=3, type=int)
    parser.add_argument("--per-sheet", default=5, type=int)
    args = parser.parse_args()

    ws = Workspace(args.workspace)
    # the cutout settings the workspace was built with (only that section: other sections may have changed since)
    saved = args.workspace / "config.yaml"
    cutout = CutoutSettings.model_validate((yaml.safe_load(saved.read_text()) or {}).get("cutout", {})
                                           if saved.is_file() else {})
    settings = VideoCutoutSettings(views=args.views)
    hands = None
    if args.hands != "none":
        from pvtt.hands import HandSettings, make_hand_detector

        hands = make_hand_detector(HandSettings(backend=args.hands))
        hands.setup()
    catalog = json.loads((ws.root / "catalog.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    rows, table = [], ["| template | photo cutout | video product | frame | score parts | views | seconds |",
                       "| --- | --- | --- | --- | --- | --- | --- |"]
    for template in catalog["templates"]:
        tid, pid = template["id"], template.get("product_id")
        photo, verdict = _photo_tile(ws, tid, pid, cutout)
        clips = curated_clips(ws, tid)
        start = time.perf_counter()
        try:
            found = video_product(ws, tid, settings, cutout, hands, clips)
        except RejectItem as exc:
            seconds = time.perf_counter() - start
            rows.append(_row([photo, _label(np.zeros((TILE, 3 * TILE, 3), np.uint8), [str(exc)[i:i + 70] for i in
                                                                                   range(0, len(str(exc)), 70)])]))
            table.append(f"| {tid} | {verdict} | rejected: {exc} | | | | {seconds:.1f} |")
            continue
        seconds = time.perf_counter() - start
        best = found.best
        clip = next(c for c in clips if c.id == best.clip_id)
        frame = clip.load(ws).frames[best.frame_index].copy()
        mask = artifacts.masks(ws, clip.id).data[best.frame_index]
        if hands is not None:
            hand = hands.hand_mask(frame)
            frame[hand] = (frame[hand] * 0.5 + np.array([255, 0, 0]) * 0.5).astype(np.uint8)
        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(frame, contours, -1, (40, 255, 40), 3)
        folder = args.out / tid
        folder.mkdir(exist_ok=True)
        write_png(folder / "frame.png", frame)
        write_png(folder / "cutout.png", found.cutout)
        for k, view in enumerate(found.views, 1):
            write_png(folder / f"view_{k}.png", view)
        p = best.parts
        parts = (f"score {best.score:.2f} conf {p['confidence']:.2f} sharp {p['sharpness_rel']:.2f} area "
                 f"{p['area']:.3f} solid {p['solidity']:.2f} stab {p['stability']:.2f} hand {p['hand']:.2f}")
        tiles = [photo, _label(_fit(frame), [f"{best.clip_id} #{best.frame_index}", parts[:60], parts[60:]]),
                 _label(_fit(_on_checkerboard(found.cutout), max_width=TILE), ["cutout"])]
        tiles += [_label(_fit(_on_checkerboard(v), max_width=TILE), [f"view {k}: {f.clip_id[-7:]} #{f.frame_index}"])
                  for k, (v, f) in enumerate(zip(found.views, found.view_frames), 1)]
        rows.append(_row(tiles))
        qualifying = sum(c.qualifies for c in found.candidates)
        table.append(f"| {tid} | {verdict} | {qualifying}/{len(found.candidates)} frames qualify | {best.clip_id} "
                     f"#{best.frame_index} | {parts} | {len(found.views)} | {seconds:.1f} |")
    for n in range(0, len(rows), args.per_sheet):
        write_png(args.out / f"sheet_{n // args.per_sheet + 1:02d}.png", _sheet(rows[n:n + args.per_sheet]))
    (args.out / "index.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
