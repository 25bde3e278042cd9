"""Ground-truth swap cases: the same background, motion, lighting and occluder, rendered with product A and with B.

A case is drawn from a seeded generator: a background clip (a real video's frames, a still
moved by a synthetic camera, or a window of a build's curated clip that its product never
enters), two product cutouts A and B, one smooth trajectory (translation,
scale, in-plane rotation and a little perspective) shared by both products, an optional global
lighting change and an optional moving occluder passing in front. Rendering it twice gives the
pipeline's input (video with A) and the truth it should produce (video with B), with both masks
and the true trajectories of points on each product.

Case folder::

    video_a.mp4  video_b.mp4        the two renders (H.264, crf 12)
    product_a.png  product_b.png    the RGBA cutouts that were rendered
    photo_a.png  photo_b.png        the products on a white background, as catalog photos
    truth.npz                        masks_a, masks_b (T,H,W) bool; points_a, points_b (T,K,2);
                                     visible_a, visible_b (T,K) bool; homographies (T,3,3)
    case.json                        parameters, seed, sizes
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pvtt.media.image import write_png
from pvtt.media.video import read_video, write_video
from pvtt.shots import detect_shots


@dataclass
class CaseParams:
    """The random choices of one case, drawn up front (see :func:`draw_params`)."""

    seed: int
    num_frames: int
    width: int
    height: int
    centre: tuple[float, float]  # product anchor (bottom centre) at frame 0, pixels
    size: float  # product height at frame 0, pixels
    shift: tuple[float, float]  # total translation over the clip, pixels
    zoom: float  # total relative scale change
    angle: float  # total in-plane rotation, degrees
    tilt: float  # perspective strength (0 = none)
    camera: tuple[float, float]  # background pan over the clip, pixels (still backgrounds only)
    light: float  # total relative brightness change
    occluder: bool
    num_points: int


def draw_params(rng: np.random.Generator, num_frames: int, width: int, height: int, occluder: bool | None = None,
                lighting: bool | None = None, num_points: int = 12) -> CaseParams:
    short = min(width, height)
    return CaseParams(
        seed=int(rng.integers(0, 2**31)),
        num_frames=num_frames, width=width, height=height,
        centre=(float(rng.uniform(0.4, 0.6) * width), float(rng.uniform(0.7, 0.85) * height)),
        size=float(rng.uniform(0.35, 0.55) * short),
        shift=(float(rng.uniform(-0.15, 0.15) * width), float(rng.uniform(-0.05, 0.05) * height)),
        zoom=float(rng.uniform(-0.15, 0.2)),
        angle=float(rng.uniform(-12, 12)),
        tilt=float(rng.uniform(0.0, 0.15)),
        camera=(float(rng.uniform(-0.1, 0.1) * width), float(rng.uniform(-0.05, 0.05) * height)),
        light=float(rng.uniform(-0.25, 0.25)) if (lighting if lighting is not None else rng.random() < 0.5) else 0.0,
        occluder=bool(occluder if occluder is not None else rng.random() < 0.4),
        num_points=num_points,
    )


def _ease(t: np.ndarray) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(np.pi * t)  # smooth start and stop


def homographies(p: CaseParams, product_size: tuple[int, int]) -> np.ndarray:
    """``(T, 3, 3)`` maps from product pixels to frame pixels, shared by A and B (normalised product box)."""
    pw, ph = product_size
    out = np.empty((p.num_frames, 3, 3))
    for i, t in enumerate(_ease(np.linspace(0.0, 1.0, p.num_frames))):
        scale = p.size * (1 + p.zoom * t) / (0.6 * ph)  # products fill about 0.6 of their canvas height
        angle = np.deg2rad(p.angle * t)
        cx, cy = p.centre[0] + p.shift[0] * t, p.centre[1] + p.shift[1] * t
        to_anchor = np.array([[1, 0, -pw / 2], [0, 1, -ph], [0, 0, 1.0]])  # bottom centre of the product
        rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1.0]])
        persp = np.array([[1, 0, 0], [0, 1, 0], [p.tilt * np.sin(np.pi * t) / max(pw, ph), 0, 1.0]])
        place = np.array([[scale, 0, cx], [0, scale, cy], [0, 0, 1.0]])
        out[i] = place @ rot @ persp @ to_anchor
    return out


def fit_to_box(rgba: np.ndarray, box: tuple[int, int], canvas_size: tuple[int, int] | None = None) -> np.ndarray:
    """``rgba`` resized to fit inside ``box`` (w, h) keeping its aspect, at the bottom centre of a transparent
    canvas of ``canvas_size`` (default: ``box``)."""
    h, w = rgba.shape[:2]
    canvas_size = canvas_size or box
    scale = min(box[0] / w, box[1] / h, canvas_size[0] / w, canvas_size[1] / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    resized = cv2.resize(rgba, (nw, nh), interpolation=cv2.INTER_AREA)
    box = canvas_size
    canvas = np.zeros((box[1], box[0], 4), np.uint8)
    x0 = (box[0] - nw) // 2
    canvas[box[1] - nh:, x0:x0 + nw] = resized
    return canvas


def backgrounds(source: np.ndarray, p: CaseParams) -> np.ndarray:
    """``(T, H, W, 3)`` background frames: a real clip's frames resized, or a still panned by the camera."""
    size = (p.width, p.height)
    if source.ndim == 4:
        idx = np.linspace(0, len(source) - 1, p.num_frames).round().astype(int)
        return np.stack([cv2.resize(source[i], size, interpolation=cv2.INTER_AREA) for i in idx])
    margin = 1.25
    big = cv2.resize(source, (int(p.width * margin), int(p.height * margin)), interpolation=cv2.INTER_AREA)
    frames = np.empty((p.num_frames, p.height, p.width, 3), np.uint8)
    base = ((big.shape[1] - p.width) / 2, (big.shape[0] - p.height) / 2)
    for i, t in enumerate(_ease(np.linspace(0.0, 1.0, p.num_frames))):
        dx = float(np.clip(base[0] + p.camera[0] * t, 0, big.shape[1] - p.width))
        dy = float(np.clip(base[1] + p.camera[1] * t, 0, big.shape[0] - p.height))
        m = np.float32([[1, 0, -dx], [0, 1, -dy]])
        frames[i] = cv2.warpAffine(big, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return frames


def _occluder_masks(p: CaseParams, rng: np.random.Generator) -> np.ndarray:
    """A skin-toned 'hand' ellipse sweeping across the product's path; ``(T, H, W)`` float alpha."""
    masks = np.zeros((p.num_frames, p.height, p.width), np.float32)
    if not p.occluder:
        return masks
    y = p.centre[1] - p.size * rng.uniform(0.3, 0.6)
    axes = (int(p.size * 0.18), int(p.size * 0.32))
    for i, t in enumerate(np.linspace(-0.3, 1.3, p.num_frames)):
        x = t * p.width
        cv2.ellipse(masks[i], (int(x), int(y)), axes, 25, 0, 360, 1.0, -1, lineType=cv2.LINE_AA)
    return masks


def _sample_points(alpha: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` points spread over the opaque part of a product (farthest-point sampling)."""
    ys, xs = np.nonzero(alpha > 200)
    if len(xs) == 0:
        return np.zeros((0, 2), np.float32)
    candidates = np.stack([xs, ys], 1).astype(np.float32)
    if len(candidates) > 4000:
        candidates = candidates[rng.choice(len(candidates), 4000, replace=False)]
    chosen = [int(rng.integers(len(candidates)))]
    dist = np.linalg.norm(candidates - candidates[chosen[0]], axis=1)
    for _ in range(min(k, len(candidates)) - 1):
        chosen.append(int(dist.argmax()))
        dist = np.minimum(dist, np.linalg.norm(candidates - candidates[chosen[-1]], axis=1))
    return candidates[chosen]


def render(background: np.ndarray, product: np.ndarray, hom: np.ndarray, occluder: np.ndarray,
           light: float, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Frames, masks, point tracks and visibility of ``product`` moved by ``hom`` over ``background``."""
    t_count, height, width = background.shape[:3]
    frames = np.empty_like(background)
    masks = np.zeros((t_count, height, width), bool)
    tracks = np.zeros((t_count, len(points), 2), np.float32)
    visible = np.zeros((t_count, len(points)), bool)
    rgb = product[..., :3].astype(np.float32)
    alpha = product[..., 3].astype(np.float32) / 255.0
    skin = np.array([205, 160, 130], np.float32)
    for i in range(t_count):
        warped = cv2.warpPerspective(rgb, hom[i], (width, height), flags=cv2.INTER_LINEAR)
        a = cv2.warpPerspective(alpha, hom[i], (width, height), flags=cv2.INTER_LINEAR)[..., None]
        frame = background[i].astype(np.float32) * (1 - a) + warped * a
        occ = occluder[i][..., None]
        frame = frame * (1 - occ) + skin * occ
        gain = 1.0 + light * i / max(1, t_count - 1)
        frames[i] = np.clip(frame * gain, 0, 255).astype(np.uint8)
        masks[i] = (a[..., 0] > 0.5) & (occluder[i] < 0.5)
        if len(points):
            projected = cv2.perspectiveTransform(points[None].astype(np.float64), hom[i])[0]
            tracks[i] = projected
            inside = (projected[:, 0] >= 0) & (projected[:, 0] < width) & (projected[:, 1] >= 0) & (projected[:, 1] < height)
            xi = np.clip(projected[:, 0].astype(int), 0, width - 1)
            yi = np.clip(projected[:, 1].astype(int), 0, height - 1)
            visible[i] = inside & (occluder[i][yi, xi] < 0.5)
    return frames, masks, tracks, visible


def photo(product: np.ndarray, size: int = 512) -> np.ndarray:
    """The product on a white studio background: the catalog photo of a case."""
    canvas = np.full((size, size, 3), 250, np.float32)
    fitted = fit_to_box(product, (int(size * 0.8), int(size * 0.8))).astype(np.float32)
    off = size // 10
    alpha = fitted[..., 3:] / 255.0
    region = canvas[off:off + fitted.shape[0], off:off + fitted.shape[1]]
    canvas[off:off + fitted.shape[0], off:off + fitted.shape[1]] = region * (1 - alpha) + fitted[..., :3] * alpha
    return canvas.astype(np.uint8)


def make_case(out: str | Path, background: np.ndarray, product_a: np.ndarray, product_b: np.ndarray,
              params: CaseParams, fps: float = 20.0) -> Path:
    """Render one case into ``out`` (see the module docstring). ``background``: (T,H,W,3) clip or (H,W,3) still."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(params.seed)
    # B takes A's slot as pvtt's insert defines it: the same visible area, anchored at the bottom centre
    canvas, inner = (320, 320), (192, 192)
    a = fit_to_box(product_a, inner, canvas)
    b = fit_to_box(product_b, inner, canvas)
    ratio = float(np.sqrt((a[..., 3] > 127).sum() / max(1, (b[..., 3] > 127).sum())))
    b = fit_to_box(product_b, (round(inner[0] * ratio), round(inner[1] * ratio)), canvas)
    box = canvas
    hom = homographies(params, box)
    bg = backgrounds(background, params)
    occluder = _occluder_masks(params, rng)
    frames_a, masks_a, points_a, visible_a = render(bg, a, hom, occluder, params.light,
                                                    _sample_points(a[..., 3], params.num_points, rng))
    frames_b, masks_b, points_b, visible_b = render(bg, b, hom, occluder, params.light,
                                                    _sample_points(b[..., 3], params.num_points, rng))
    write_video(out / "video_a.mp4", frames_a, fps, crf=12)
    write_video(out / "video_b.mp4", frames_b, fps, crf=12)
    write_png(out / "product_a.png", a)
    write_png(out / "product_b.png", b)
    write_png(out / "photo_a.png", photo(a))
    write_png(out / "photo_b.png", photo(b))
    np.savez_compressed(out / "truth.npz", masks_a=masks_a, masks_b=masks_b, points_a=points_a, points_b=points_b,
                        visible_a=visible_a, visible_b=visible_b, homographies=hom)
    (out / "case.json").write_text(json.dumps({"params": asdict(params), "fps": fps}, indent=1))
    return out


def _load_background(path: Path, max_frames: int) -> np.ndarray:
    from pvtt.catalog import IMAGE_EXTENSIONS
    from pvtt.media.image import load_image_rgba

    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return load_image_rgba(path)[..., :3]
    frames, _ = read_video(path, max_frames=max_frames)
    return frames


def free_window(occupied: np.ndarray, aspect: float, min_width: int, step: int = 8
                ) -> tuple[int, int, int, int] | None:
    """The largest window ``(x, y, w, h)`` with ``w / h`` about ``aspect`` that holds no pixel of ``occupied``
    (searched on a grid of ``step`` px), or None when none is at least ``min_width`` px wide. Of the windows of the
    largest size, the one nearest the frame's centre."""
    h, w = occupied.shape
    gh, gw = h // step, w // step
    grid = cv2.resize(occupied.astype(np.uint8), (gw, gh), interpolation=cv2.INTER_AREA) > 0
    grid |= cv2.resize(occupied.astype(np.uint8), (gw, gh), interpolation=cv2.INTER_NEAREST) > 0
    table = np.pad(grid.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    for ww in range(gw, 0, -1):
        hh = int(round(ww / aspect))
        if ww * step < min_width:
            return None
        if not 0 < hh <= gh:
            continue
        sums = table[hh:, ww:] - table[:-hh, ww:] - table[hh:, :-ww] + table[:-hh, :-ww]
        ys, xs = np.nonzero(sums == 0)
        if len(ys):
            k = int(np.argmin((xs + ww / 2 - gw / 2) ** 2 + (ys + hh / 2 - gh / 2) ** 2))
            return int(xs[k]) * step, int(ys[k]) * step, ww * step, hh * step
    return None


def product_free_clips(workspace: str | Path, num_frames: int, width: int, height: int, margin: float = 0.05,
                       max_upscale: float = 1.5, hands: Any = None
                       ) -> list[tuple[str, Path, tuple[int, int, int, int]]]:
    """``(clip id, clip video path, window)`` for each curated clip of a build's workspace that has a window of the case's aspect
    which its product (the segment masks of the first ``num_frames`` frames, grown by ``margin`` of the short side)
    never enters, at least ``width / max_upscale`` px wide: real footage with real camera motion and neither the
    product nor an erase fill in it. (An erased clip as background carries its fill, which the judge then reads
    as the new pair's remnant or smear.) ``hands``: a hand detector (:mod:`pvtt.hands`); the hands it finds (every
    fourth frame) are kept out of the window too — the hands that hold a product are next to it, and a window of
    skin is no product's background."""
    from pvtt import artifacts
    from pvtt.items import collect_clips, curated_clips
    from pvtt.store import Workspace

    ws = Workspace(workspace)
    found = []
    for template in dict.fromkeys(c.template_id for c in collect_clips(ws)):
        for clip in curated_clips(ws, template):
            occupied = artifacts.masks(ws, clip.id).data[:num_frames].any(axis=0)
            if hands is not None:
                frames, _ = read_video(ws.abs(clip.path), max_frames=num_frames)
                occupied = occupied | hands.hand_masks(frames, stride=4).any(axis=0)
            r = max(1, round(margin * min(occupied.shape)))
            occupied = cv2.dilate(occupied.astype(np.uint8),
                                  cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))) > 0
            window = free_window(occupied, width / height, int(np.ceil(width / max_upscale)))
            if window is not None:
                found.append((clip.id, ws.abs(clip.path), window))
    return found


def _load_window(path: Path, window: tuple[int, int, int, int], max_frames: int) -> np.ndarray:
    frames, _ = read_video(path, max_frames=max_frames)
    x, y, w, h = window
    return np.ascontiguousarray(frames[:, y:y + h, x:x + w])


def collect_files(paths: list[Path], extensions: set[str]) -> list[Path]:
    """Files with ``extensions`` among ``paths`` (folders searched recursively), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += [p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in extensions]
        elif path.suffix.lower() in extensions:
            found.append(path)
    return sorted(set(found))


MAX_DRAWS = 4
"""Draws per case asked for before ``make_benchmark`` gives up: a case the shot detector cuts is drawn again."""


def make_benchmark(backgrounds: list[Path], products: list[Path], out: str | Path, count: int = 12, seed: int = 0,
                   num_frames: int = 41, width: int = 640, height: int = 352, fps: float = 20.0,
                   workspace: str | Path | None = None) -> list[Path]:
    """``count`` cases from real backgrounds (videos or stills) and real product photos cut out by pvtt's cutout.

    ``workspace``: a build's workspace whose curated clips, each cropped to a window that its product and the hands
    found there (:mod:`pvtt.hands`' default detector) never enter (:func:`product_free_clips`), are backgrounds too (``background`` in ``case.json``: ``clip:<id>`` and its
    ``window``).

    Product photos that the cutout stage would reject (a low-confidence cut, or foreign content: a shelf, a
    hand, fragments, a contact shadow) are skipped and named in the log: a case's product B has to be one the
    build accepts, or the case never reaches the judge. So is a drawn case whose video the shot detector (default
    settings) cuts — a near-grey studio backdrop whose chroma shifts by half a level reads as a cut to its hue term —
    and another is drawn in its place (at most :data:`MAX_DRAWS` draws per case). Each case pairs two different
    products. ``width`` and ``height`` should be multiples of 16 so normalization keeps frames 1:1.
    """
    import logging

    from pvtt.catalog import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
    from pvtt.cutout import CutoutSettings, cutout_problems, make_cutter
    from pvtt.errors import PvttError
    from pvtt.media.image import load_image_rgba
    from pvtt.types import ProductImage

    log = logging.getLogger("pvtt")
    rng = np.random.default_rng(seed)
    sources: list[tuple[dict, Any]] = [({"background": str(p)}, lambda p=p: _load_background(p, num_frames))
                                       for p in collect_files(backgrounds, VIDEO_EXTENSIONS | IMAGE_EXTENSIONS)]
    if workspace is not None:
        from pvtt.hands import make_hand_detector

        hands = make_hand_detector()  # MediaPipe's when pvtt[hands] is installed, else none
        log.info("bench: backgrounds from the curated clips of %s, hands (%s) and products left out", workspace,
                 hands.name)
        sources += [({"background": f"clip:{clip_id}", "window": list(window)},
                     lambda p=path, w=window: _load_window(p, w, num_frames))
                    for clip_id, path, window in product_free_clips(workspace, num_frames, width, height,
                                                                    hands=hands)]
    photo_files = collect_files(products, IMAGE_EXTENSIONS)
    if not sources:
        where = f", nor a curated clip with a window free of its product in {workspace}" if workspace else ""
        raise ValueError(f"no background videos or images found in {backgrounds}{where}")
    settings = CutoutSettings()
    cutter = make_cutter(settings)
    cutouts = []
    for path in photo_files:
        try:
            result = cutter.cut_out(ProductImage(path.stem, load_image_rgba(path)))
        except PvttError as exc:
            log.warning("bench: skipping product photo %s: %s", path, exc)
            continue
        problems = cutout_problems(result, settings)[1]
        if result.low_confidence and settings.reject_low_confidence:  # as the cutout stage decides
            problems.insert(0, f"low-confidence cutout ({result.confidence:.2f})")
        if problems:
            log.warning("bench: skipping product photo %s: %s", path, "; ".join(problems))
            continue
        cutouts.append((path.stem, result.rgba))
    if len(cutouts) < 2:
        raise ValueError(f"need at least two usable product photos, found {len(cutouts)} in {products}")
    out = Path(out)
    made: list[Path] = []
    for _ in range(MAX_DRAWS * count):
        if len(made) == count:
            break
        about, load = sources[int(rng.integers(len(sources)))]
        i, j = rng.choice(len(cutouts), 2, replace=False)
        params = draw_params(rng, num_frames, width, height)
        case = make_case(out / f"case{len(made):03d}", load(), cutouts[i][1], cutouts[j][1], params, fps)
        cuts = [shot.start_frame for shot in detect_shots(case / "video_a.mp4")[1:]]
        if cuts:  # the build would split the case at normalize and compare nothing
            log.warning("bench: dropped a case on %s: the shot detector cuts its video at frame(s) %s (a build "
                        "rejects it at normalize, with no edit to compare)", about["background"], cuts)
            shutil.rmtree(case)
            continue
        meta = json.loads((case / "case.json").read_text())
        meta.update({**about, "product_a": cutouts[i][0], "product_b": cutouts[j][0]})
        (case / "case.json").write_text(json.dumps(meta, indent=1))
        made.append(case)
    if len(made) < count:
        raise ValueError(f"made {len(made)} of {count} cases in {MAX_DRAWS * count} draws: the shot detector cuts "
                         f"the others (the warnings name their backgrounds)")
    return made
