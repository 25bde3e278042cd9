"""A small catalog that pvtt renders itself, in the PVTT benchmark layout, for ``pvtt demo``.

Templates are product showcase clips: a shaded, textured product standing on a textured table,
moving a little (slide, slight zoom) while the camera pans, with a hard cut to a second shot.
Each template has a product photo of its own product on a white studio background, so the demo
exercises every input path of the real benchmark. All of it is drawn from a seed.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pvtt.testmedia import textured_background, write_video

# name, category, subcategory, description, (width, height) of the product in a 1:1 unit, colour
PRODUCTS = [
    ("mug", "home", "mug", "a glazed ceramic mug with a blue stripe", (0.55, 0.6), (200, 90, 60)),
    ("bottle", "home", "bottle", "a tall green glass bottle with a cream label", (0.3, 0.9), (40, 130, 70)),
    ("box", "toys", "gift box", "a square red gift box with a gold ribbon", (0.7, 0.6), (190, 30, 40)),
    ("vase", "art", "vase", "a round white porcelain vase with dots", (0.6, 0.75), (225, 220, 210)),
]


def draw_product(kind: int, size: int, seed: int) -> np.ndarray:
    """A synthetic RGBA product drawn from ``seed``: ``PRODUCTS[kind]`` filling about ``size`` pixels in height."""
    _, _, _, _, (uw, uh), colour = PRODUCTS[kind]
    rng = np.random.default_rng(seed)
    height, width = int(size * uh), int(size * uw)
    canvas = np.zeros((height, width, 4), np.uint8)
    body = np.zeros((height, width), np.uint8)
    if kind == 0:  # mug: body + handle
        cv2.rectangle(body, (0, int(0.05 * height)), (int(0.78 * width), height - 1), 255, -1)
        cv2.ellipse(body, (int(0.8 * width), height // 2), (int(0.2 * width), int(0.22 * height)), 0, -90, 90, 255,
                    max(3, width // 14))
    elif kind == 1:  # bottle: neck + shoulders + body
        cv2.rectangle(body, (int(0.36 * width), 0), (int(0.64 * width), int(0.3 * height)), 255, -1)
        cv2.ellipse(body, (width // 2, int(0.38 * height)), (width // 2 - 1, int(0.12 * height)), 0, 180, 360, 255, -1)
        cv2.rectangle(body, (0, int(0.38 * height)), (width - 1, height - 1), 255, -1)
    elif kind == 2:  # box
        cv2.rectangle(body, (0, 0), (width - 1, height - 1), 255, -1)
    else:  # vase: round body + neck
        cv2.ellipse(body, (width // 2, int(0.62 * height)), (width // 2 - 1, int(0.38 * height)), 0, 0, 360, 255, -1)
        cv2.rectangle(body, (int(0.35 * width), 0), (int(0.65 * width), int(0.3 * height)), 255, -1)
    # shading: lit from the left, darker on the right and at the bottom
    xs = np.linspace(1.15, 0.6, width)[None, :]
    ys = np.linspace(1.0, 0.85, height)[:, None]
    rgb = np.clip(np.array(colour, np.float32)[None, None, :] * (xs * ys)[..., None], 0, 255)
    rgb += rng.normal(0, 6, rgb.shape).astype(np.float32)  # surface grain for features
    rgb = np.clip(rgb, 0, 255).astype(np.uint8)
    if kind == 0:
        cv2.rectangle(rgb, (0, int(0.45 * height)), (width, int(0.55 * height)), (40, 70, 200), -1)
    elif kind == 1:
        cv2.rectangle(rgb, (0, int(0.55 * height)), (width, int(0.8 * height)), (235, 225, 190), -1)
        cv2.putText(rgb, "OIL", (int(0.15 * width), int(0.72 * height)), cv2.FONT_HERSHEY_SIMPLEX,
                    width / 110, (60, 40, 20), max(1, width // 40))
    elif kind == 2:
        cv2.rectangle(rgb, (int(0.45 * width), 0), (int(0.55 * width), height), (230, 190, 60), -1)
        cv2.rectangle(rgb, (0, int(0.45 * height)), (width, int(0.55 * height)), (230, 190, 60), -1)
    else:
        for _ in range(25):
            centre = (int(rng.integers(0, width)), int(rng.integers(int(0.3 * height), height)))
            cv2.circle(rgb, centre, max(2, width // 30), (40, 60, 150), -1)
    canvas[..., :3] = rgb
    canvas[..., 3] = cv2.GaussianBlur(body, (3, 3), 0)
    return canvas


def composite(background: np.ndarray, product: np.ndarray, x: float, y_bottom: float, scale: float) -> np.ndarray:
    """Paste ``product`` (RGBA) onto ``background`` with its bottom centre at ``(x, y_bottom)``, plus a soft shadow."""
    frame = background.astype(np.float32)
    h, w = product.shape[:2]
    pw, ph = max(2, int(w * scale)), max(2, int(h * scale))
    m = np.float32([[pw / w, 0, x - pw / 2], [0, ph / h, y_bottom - ph]])
    size = (background.shape[1], background.shape[0])
    warped = cv2.warpAffine(product, m, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0)).astype(np.float32)
    alpha = warped[..., 3:] / 255.0
    shadow = np.zeros(background.shape[:2], np.float32)
    cv2.ellipse(shadow, (int(x), int(y_bottom)), (int(pw * 0.55), max(2, int(ph * 0.06))), 0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(1.0, pw * 0.06))[..., None] * 0.45
    frame = frame * (1 - shadow)
    frame = frame * (1 - alpha) + warped[..., :3] * alpha
    return np.clip(frame, 0, 255).astype(np.uint8)


def render_template(kind: int, seed: int, height: int = 720, width: int = 960, frames_per_shot: int = 40) -> np.ndarray:
    """Two shots of the product on a table: a pan with the product sliding, then a closer, slower shot."""
    rng = np.random.default_rng(seed)
    product = draw_product(kind, size=height, seed=seed)
    shots = []
    for shot, zoom in enumerate((0.55, 0.8)):
        table = textured_background(height * 2, width * 2, seed * 10 + shot, detail=10.0)
        wall = np.full((height, width * 2, 3), rng.integers(150, 230, 3), np.uint8)
        wall = np.clip(wall + rng.normal(0, 6, wall.shape[:2] + (1,)), 0, 255).astype(np.uint8)  # painted plaster
        scene = np.concatenate([wall, table[:height]], axis=0)  # wall on top, table below
        pan = rng.uniform(0.6, 1.4) * width / 320 * (1 if shot == 0 else -0.5)
        for i in range(frames_per_shot):
            t = i / frames_per_shot
            # the pan stops at the scene's edges (long shots would run off them; the default 40 frames never do)
            offset = int(np.clip(width * 0.2 + pan * i, 0, scene.shape[1] - width))
            view = np.ascontiguousarray(scene[height // 2: height // 2 + height, offset: offset + width])
            x = width * (0.5 + 0.12 * np.sin(2 * np.pi * t + shot))
            scale = zoom * (1 + 0.08 * t)
            shots.append(composite(view, product, x, height * 0.85, scale))
    return np.stack(shots)


def product_photo(kind: int, seed: int, size: int = 400) -> np.ndarray:
    """The product centred on a white studio background, as an RGB photo."""
    background = np.full((size, size, 3), 250, np.uint8)
    return composite(background, draw_product(kind, size=int(size * 0.8), seed=seed), size / 2, size * 0.9, 1.0)


def make_demo_catalog(root: str | Path, count: int = 3, seed: int = 0) -> Path:
    """Write ``count`` templates and their product photos in the PVTT benchmark layout under ``root``."""
    root = Path(root)
    samples = []
    for n in range(count):
        kind = n % len(PRODUCTS)
        name, category, subcategory, description, _, _ = PRODUCTS[kind]
        sample_id = f"DEMO{n + 1:03d}"
        video = Path("videos") / category / f"{sample_id}.mp4"
        image = Path("images") / category / f"{sample_id}_source.jpg"
        (root / video).parent.mkdir(parents=True, exist_ok=True)
        (root / image).parent.mkdir(parents=True, exist_ok=True)
        write_video(root / video, render_template(kind, seed + n), fps=20)
        Image.fromarray(product_photo(kind, seed + n)).save(root / image, quality=92)
        samples.append({
            "id": sample_id, "category": category, "subcategory": subcategory,
            "template_video": {"path": str(video)},
            "source_product": {"image_path": str(image), "description": description},
        })
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "metadata.json").write_text(
        json.dumps({"description": "pvtt demo catalog (rendered)", "samples": samples}, indent=1))
    return root
