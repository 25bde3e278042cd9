"""Fill of what no frame shows, against the truth: product-shaped holes cut into real frames, filled by each method.

    python benchmarks/bench_fill.py [--data DIR] [--short 360] [--context 0.25] [--wide-context 1.0] [--out /tmp/fill]
                                    [--methods telea,membrane,shiftmap,fsr-fast,fsr-best] [--limit N] [--full 720]
                                    [--place textured|smooth|boundary] [--rare-ratio 0.05] [--boundary-gain 1.0]

(``fsr-best`` costs 30–40 CPU seconds per hole: leave it out, or use ``--limit``, for a quick run. A method with
``+common`` appended, e.g. ``shiftmap+common``, copies only from colours common around the hole:
``erase.inpaint_rare_ratio`` = ``--rare-ratio``; with ``+sided``, each side of a straight boundary across the hole
is filled from its own side: ``erase.inpaint_boundary_gain`` = ``--boundary-gain``. With ``--full`` every
shift-map method is run twice, upsampled and with ``+detail``: ``shiftmap+common`` and ``shiftmap+common+detail``.)

The classical eraser fills the never-visible part of A's region once, in frame 0's coordinates, at the work
resolution (``erase.work_short_side``, 360 by default) with :func:`pvtt.erase.classical.fill_unseen`; this
bench calls that same function. Backgrounds are real frames of the development videos (at 25% and 60% of each
clip, letterbox bars cut off, resized to ``--short``; fades and black frames skipped); holes are product-shaped
(a rotated ellipse, a blob of a few ellipses, or the hand-made bracelet mask of the worked case), dilated and
extended downwards as the eraser dilates A's mask, scaled to 5–15% of the frame, and placed at the candidate
position (of 12 random ones) where the frame is most textured with the least large-scale structure. Inside each
hole, against the true pixels:

* ``psnr`` (dB);
* ``grad``: mean gradient magnitude of the fill / of the truth (1.0 = as textured as what was there, ≪ 1 = smear);
* ``std``: mean local standard deviation (7×7) of the fill / of the truth (same reading);
* ``grad_band``: mean gradient magnitude of the fill / in a band around the hole (1.0 = as textured as the
  surroundings);
* ``seconds`` per fill (wall) and ``cpu`` seconds (all threads): on a shared machine the wall time depends
  on the load, read it as an order of magnitude.

With ``--full N`` the frames are N px on their short side and each method fills at ``--short`` and is brought
back up as the eraser does (:func:`pvtt.erase.classical.fill_unseen_full`), measured at N: ``shiftmap`` upsampled,
``shiftmap+detail`` with each pixel copied at N from where shift-map copied its work-resolution pixel
(``erase.inpaint_detail``, the default).

Texture is measured 3 px inside the hole's border so the seam does not count. PSNR favours a blur: a fill with
the right texture in the wrong place scores lower than a flat mean, so read it with the texture columns and the
sheet. Prints medians over all holes and writes ``sheet.png`` (a few holes × methods, cropped around the hole,
the hole outlined) and ``holes.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from pvtt.erase import EraseSettings
from pvtt.erase.classical import dilate_region, fill_unseen, fill_unseen_full, xphoto_available

DEV_DATA = Path(os.environ.get("PVTT_DEV_DATA", Path(__file__).resolve().parents[2] / "shared" / "data" / "pvtt-dev"))
METHODS = ("telea", "membrane", "shiftmap", "fsr-fast", "fsr-best")
SHAPES = ("ellipse", "blob", "bracelet")


@dataclass
class HoleParams:
    """The random choices of one hole, drawn up front (see :func:`draw_holes`)."""

    background: int  # index into the list of backgrounds
    shape: str
    area: float  # fraction of the frame
    angle: float  # degrees
    aspect: float  # width / height of the shape's box
    lobes: list[tuple[float, float, float]]  # blob: ellipse centres (-0.5..0.5 of the box) and relative size
    candidates: list[tuple[float, float]]  # centre positions tried (fractions of the frame); the most textured wins


def draw_holes(rng: np.random.Generator, backgrounds: int, per_background: int) -> list[HoleParams]:
    holes = []
    for b in range(backgrounds):
        for k in range(per_background):
            holes.append(HoleParams(
                background=b, shape=SHAPES[(b * per_background + k) % len(SHAPES)],
                area=float(rng.uniform(0.05, 0.15)), angle=float(rng.uniform(-30, 30)),
                aspect=float(rng.uniform(0.6, 1.8)),
                lobes=[(float(rng.uniform(-0.3, 0.3)), float(rng.uniform(-0.3, 0.3)), float(rng.uniform(0.4, 0.7)))
                       for _ in range(4)],
                candidates=[(float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.2, 0.8))) for _ in range(12)],
            ))
    return holes


def load_backgrounds(data: Path, short: int,
                     fractions: tuple[float, ...] = (0.25, 0.6)) -> list[tuple[str, np.ndarray]]:
    """Real frames of the development videos, letterbox bars cut off, resized to a ``short`` short side; frames
    that are nearly flat (fades, black) are skipped."""
    out = []
    for path in sorted((data / "videos").rglob("*.mp4")):
        cap = cv2.VideoCapture(str(path))
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        for frac in fractions:
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(frac * count))
            ok, bgr = cap.read()
            if not ok:
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            lit = rgb.max(axis=2) > 20
            rows, cols = np.flatnonzero(lit.mean(axis=1) > 0.05), np.flatnonzero(lit.mean(axis=0) > 0.05)
            if len(rows) < 64 or len(cols) < 64:
                continue
            rgb = rgb[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            rgb = np.ascontiguousarray(cv2.resize(rgb, _size_at(rgb, short), interpolation=cv2.INTER_AREA))
            if _gradient(rgb).mean() < 2.0:
                continue
            out.append((f"{path.stem}@{frac:.2f}", rgb))
        cap.release()
    return out


def _size_at(image: np.ndarray, short: int) -> tuple[int, int]:
    """(width, height) of ``image`` resized to a ``short`` short side."""
    h, w = image.shape[:2]
    return round(w * short / min(h, w)), round(h * short / min(h, w))


def _gradient(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3))


def _local_std(rgb: np.ndarray, size: int = 7) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(grey, (size, size))
    return np.sqrt(np.maximum(cv2.blur(grey * grey, (size, size)) - mean * mean, 0))


def shape_mask(p: HoleParams, size: tuple[int, int], bracelet: np.ndarray | None) -> np.ndarray:
    """The hole's shape (bool, ``size`` = (H, W)) centred in the frame, before dilation and placement."""
    h, w = size
    target = p.area * h * w / 1.35  # the eraser's dilation and shadow extension add roughly a third
    if p.shape == "bracelet" and bracelet is not None:
        ys, xs = np.nonzero(bracelet)
        crop = bracelet[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8)
        s = np.sqrt(target / max(1, crop.sum()))
        crop = cv2.resize(crop, (max(4, round(crop.shape[1] * s)), max(4, round(crop.shape[0] * s))),
                          interpolation=cv2.INTER_NEAREST)
        crop = crop[:h - 4, :w - 4]
        out = np.zeros((h, w), np.uint8)
        y0, x0 = (h - crop.shape[0]) // 2, (w - crop.shape[1]) // 2
        out[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        return out > 0
    out = np.zeros((h, w), np.uint8)
    by = np.sqrt(target / (np.pi * p.aspect))  # semi-axes of an ellipse of the target area
    bx = by * p.aspect
    if p.shape == "ellipse":
        cv2.ellipse(out, (w // 2, h // 2), (round(bx), round(by)), p.angle, 0, 360, 1, -1)
        return out > 0
    for dx, dy, r in p.lobes:  # blob: a few overlapping ellipses, scaled to the target area afterwards
        cv2.ellipse(out, (round(w / 2 + dx * 2 * bx), round(h / 2 + dy * 2 * by)), (round(r * bx), round(r * by)),
                    p.angle, 0, 360, 1, -1)
    out = cv2.GaussianBlur(out.astype(np.float32), (0, 0), 0.1 * by) > 0.5
    ys, xs = np.nonzero(out)
    s = np.sqrt(target / max(1, out.sum()))
    m = cv2.getRotationMatrix2D((float(xs.mean()), float(ys.mean())), 0, s)
    m[:, 2] += (w / 2 - xs.mean(), h / 2 - ys.mean())
    return cv2.warpAffine(out.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0


def place(shape: np.ndarray, p: HoleParams, truth: np.ndarray, where: str = "textured") -> np.ndarray:
    """``shape`` dilated as the eraser dilates A's mask, scaled to ``p.area`` of the frame, and moved to the
    candidate position where the frame is most textured but has the least large-scale structure (fine texture
    of a surface — fabric, wood, a table — rather than an object's outline, which no fill can guess); with
    ``where="smooth"``, where it is least textured (a wall, a studio backdrop, satin); with ``"boundary"``, where the
    frame's coarse colour above the hole's middle row differs most from that below it (a wall over a table, a
    table's edge)."""
    h, w = shape.shape
    settings = EraseSettings()
    region = dilate_region(shape, settings.dilate, settings.shadow, settings.fill_holes)
    for _ in range(3):  # the dilation grows with the shape's box: rescale the shape until the region fits
        s = float(np.sqrt(p.area * h * w / max(1, region.sum())))
        if abs(s - 1) < 0.03:
            break
        ys, xs = np.nonzero(shape)
        m = cv2.getRotationMatrix2D((float(xs.mean()), float(ys.mean())), 0, s)
        shape = cv2.warpAffine(shape.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST) > 0
        region = dilate_region(shape, settings.dilate, settings.shadow, settings.fill_holes)
    ys, xs = np.nonzero(region)
    texture = _gradient(truth)
    size = float(np.sqrt(len(ys)))
    coarse = cv2.GaussianBlur(truth.astype(np.float32), (0, 0), max(2.0, size / 8))
    best, best_score = None, -np.inf
    upper = ys < ys.mean()
    for fx, fy in p.candidates:
        dx = int(np.clip(fx * w - xs.mean(), -xs.min() + 2, w - 3 - xs.max()))
        dy = int(np.clip(fy * h - ys.mean(), -ys.min() + 2, h - 3 - ys.max()))
        structure = float(coarse[ys + dy, xs + dx].std(axis=0).mean())
        detail = float(texture[ys + dy, xs + dx].mean())
        if where == "boundary":
            inside = coarse[ys + dy, xs + dx]
            score = float(np.linalg.norm(inside[upper].mean(0) - inside[~upper].mean(0)))
        else:
            score = -detail * (1 + structure / 8) if where == "smooth" else detail / (1 + structure / 8)
        if score > best_score:
            best, best_score = (dx, dy), score
    out = np.zeros_like(region)
    out[ys + best[1], xs + best[0]] = True
    return out


def measure(filled: np.ndarray, truth: np.ndarray, hole: np.ndarray) -> dict[str, float]:
    inner = cv2.erode(hole.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    if inner.sum() < 50:
        inner = hole
    width = max(6, int(0.15 * np.sqrt(hole.sum())))
    band = (cv2.dilate(hole.astype(np.uint8), np.ones((2 * width + 1, 2 * width + 1), np.uint8)) > 0) & ~hole
    mse = float(((filled[hole].astype(np.float64) - truth[hole]) ** 2).mean())
    g_fill, g_true = _gradient(filled), _gradient(truth)
    s_fill, s_true = _local_std(filled), _local_std(truth)
    return {
        "psnr": 10 * np.log10(255.0**2 / max(mse, 1e-10)),
        "grad": float(g_fill[inner].mean() / max(g_true[inner].mean(), 1e-6)),
        "std": float(s_fill[inner].mean() / max(s_true[inner].mean(), 1e-6)),
        "grad_band": float(g_fill[inner].mean() / max(g_true[band].mean(), 1e-6)),
    }


def _tile(image: np.ndarray, box: tuple[int, int, int, int], height: int, label: str,
          hole: np.ndarray | None) -> np.ndarray:
    x0, y0, x1, y1 = box
    tile = image[y0:y1, x0:x1].copy()
    if hole is not None:  # the hole's outline, thin, so the eye finds the seam
        edge = (cv2.dilate(hole[y0:y1, x0:x1].astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~hole[y0:y1, x0:x1]
        tile[edge] = (255, 0, 255)
    w = round(tile.shape[1] * height / tile.shape[0])
    tile = cv2.resize(tile, (w, height), interpolation=cv2.INTER_AREA if tile.shape[0] > height else cv2.INTER_CUBIC)
    cv2.rectangle(tile, (0, 0), (min(w, 8 + 9 * len(label)), 20), (0, 0, 0), -1)
    cv2.putText(tile, label, (4, 15), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEV_DATA)
    parser.add_argument("--short", type=int, default=EraseSettings().work_short_side,
                        help="short side of the frames (the eraser fills at erase.work_short_side)")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--per-background", type=int, default=1, help="holes per background frame")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N backgrounds (0: all)")
    parser.add_argument("--context", type=float, default=EraseSettings().inpaint_context,
                        help="xphoto crop: the hole's box grown by this × its size (erase.inpaint_context)")
    parser.add_argument("--wide-context", type=float, default=EraseSettings().inpaint_wide_context,
                        help="also fill from this wider crop and keep the fill nearer the texture beside the hole, "
                             "row by row (erase.inpaint_wide_context; 0: off)")
    parser.add_argument("--full", type=int, default=0,
                        help="frames at this short side, filled at --short and brought back up (0: fill and measure "
                             "at --short)")
    parser.add_argument("--place", choices=("textured", "smooth", "boundary"), default="textured",
                        help="where each hole goes: the most textured candidate position, the smoothest, or the one "
                             "whose coarse colour changes most from its upper to its lower half")
    parser.add_argument("--rare-ratio", type=float, default=EraseSettings().inpaint_rare_ratio,
                        help="erase.inpaint_rare_ratio of the '+common' methods (e.g. shiftmap+common)")
    parser.add_argument("--boundary-gain", type=float, default=EraseSettings().inpaint_boundary_gain,
                        help="erase.inpaint_boundary_gain of the '+sided' methods (e.g. shiftmap+common+sided)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sheet-rows", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("/tmp/fill"))
    args = parser.parse_args()
    methods = args.methods.split(",")
    if args.full:  # each shift-map method also with its pixels copied at full resolution
        methods = [v for m in methods for v in ((m, m + "+detail") if m.split("+")[0] == "shiftmap" else (m,))]
    for m in methods:
        unknown = set(m.split("+")[1:]) - ({"common", "sided", "detail"} if args.full else {"common", "sided"})
        if unknown:
            sys.exit(f"unknown method option(s) {sorted(unknown)} in {m!r}: '+common', '+sided', and with --full "
                     "'+detail'")
    if not (args.data / "videos").is_dir():
        sys.exit(f"no development data at {args.data}")
    if args.full and args.full <= args.short:
        sys.exit("--full must be above --short")
    if any(m.split("+")[0] not in ("telea", "membrane") for m in methods) and not xphoto_available():
        sys.exit("cv2.xphoto is missing: pip install opencv-contrib-python-headless (same version as opencv)")
    args.out.mkdir(parents=True, exist_ok=True)

    # 1. backgrounds and holes (all random choices drawn up front)
    backgrounds = load_backgrounds(args.data, args.full or args.short)
    if args.limit:
        backgrounds = backgrounds[: args.limit]
    bracelet_path = args.data / "cases" / "bracelet_to_necklace" / "bracelet_mask.png"
    bracelet = cv2.imread(str(bracelet_path), cv2.IMREAD_GRAYSCALE) > 127 if bracelet_path.is_file() else None
    params = draw_holes(np.random.default_rng(args.seed), len(backgrounds), args.per_background)

    # 2. fill each hole with each method, measure against the truth
    rows, sheet = [], []
    for i, p in enumerate(params):
        name, truth = backgrounds[p.background]
        small = cv2.resize(truth, _size_at(truth, args.short), interpolation=cv2.INTER_AREA) if args.full else truth
        hole = place(shape_mask(p, small.shape[:2], bracelet), p, small, args.place)
        if args.full:  # the hole at full size, and again at the work size: every pixel it touches
            hole = cv2.resize(hole.astype(np.uint8), truth.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
            hole_small = cv2.resize(hole.astype(np.float32), small.shape[1::-1], interpolation=cv2.INTER_AREA) > 0
        holed = truth.copy()
        holed[hole] = 0  # no method may see the true pixels
        record = {"hole": i, "background": name, "shape": p.shape, "area": float(hole.mean()), "methods": {}}
        fills = {}
        for m in methods:
            started, cpu = time.perf_counter(), time.process_time()
            method, *options = m.split("+")
            share = args.rare_ratio if "common" in options else 0.0
            gain = args.boundary_gain if "sided" in options else 0.0
            if args.full:
                filled = fill_unseen_full(holed, hole_small, method, EraseSettings().inpaint_radius,
                                          context=args.context, wide_context=args.wide_context,
                                          detail="detail" in options, rare_ratio=share, boundary_gain=gain)
                filled = np.where(hole[..., None], filled, truth)
            else:
                filled = fill_unseen(holed, hole, method, EraseSettings().inpaint_radius, context=args.context,
                                     wide_context=args.wide_context, rare_ratio=share, boundary_gain=gain)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            fills[m] = filled
            record["methods"][m] = {**measure(filled, truth, hole), "seconds": seconds, "cpu": cpu}
        rows.append(record)
        print(f"[{i + 1}/{len(params)}] {name} {p.shape} {100 * hole.mean():.1f}%  " + "  ".join(
            f"{m}: {r['psnr']:.1f}dB g{r['grad']:.2f} {r['seconds']:.1f}s/{r['cpu']:.1f}cpu"
            for m, r in record["methods"].items()), flush=True)
        if len(sheet) < args.sheet_rows:
            ys, xs = np.nonzero(hole)
            pad = int(0.35 * max(np.ptp(xs), np.ptp(ys)))
            h, w = hole.shape
            box = (max(0, xs.min() - pad), max(0, ys.min() - pad), min(w, xs.max() + pad), min(h, ys.max() + pad))
            tiles = [_tile(truth, box, 200, f"{name} truth", None)]
            tiles += [_tile(fills[m], box, 200, m, hole) for m in methods]
            sheet.append(np.hstack([np.pad(t, ((2, 2), (2, 2), (0, 0))) for t in tiles]))

    # 3. table and sheet
    where = f"filled at {args.short} and measured at {args.full}" if args.full else f"at {args.short}"
    print(f"\n{len(rows)} holes on {len(backgrounds)} real frames, {where} px short side; medians "
          f"(grad, std: texture of the fill / of the truth inside the hole; grad_band: / around it; 1.0 = textured)")
    print(f"{'method':16} {'psnr dB':>8} {'grad':>6} {'std':>6} {'grad_band':>9} {'s median':>9} {'s max':>7} "
          f"{'cpu s med':>9}")
    for m in methods:
        col = {k: np.array([r["methods"][m][k] for r in rows])
               for k in ("psnr", "grad", "std", "grad_band", "seconds", "cpu")}
        print(f"{m:16} {np.median(col['psnr']):8.2f} {np.median(col['grad']):6.2f} {np.median(col['std']):6.2f} "
              f"{np.median(col['grad_band']):9.2f} {np.median(col['seconds']):9.2f} {col['seconds'].max():7.2f} "
              f"{np.median(col['cpu']):9.2f}")
    width = max(s.shape[1] for s in sheet)
    image = np.vstack([np.pad(s, ((0, 0), (0, width - s.shape[1]), (0, 0))) for s in sheet])
    cv2.imwrite(str(args.out / "sheet.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (args.out / "holes.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()},
                                                     "params": [asdict(p) for p in params], "holes": rows}, indent=1))
    print(f"wrote {args.out / 'sheet.png'} and {args.out / 'holes.json'}")


if __name__ == "__main__":
    main()
