"""Saliency fallback: spectral residual (NumPy FFT) + colour distinctiveness against the border + a centre prior,
or (the ``salient`` backend) U²-Net-p's salient-object map.

The map is computed at a small working size; it is thresholded (Otsu; 0.5 for U²-Net's nearly two-valued map), the
connected component with the most saliency mass becomes the box — with U²-Net's map, together with the components
whose mass comes near it (``locate.salient.join``: the pieces of a set) — and the box's confidence is its contrast:
mean saliency inside the box minus mean outside (in [0, 1]).
"""

from __future__ import annotations

import cv2
import numpy as np

from pvtt.types import Box


def spectral_residual(gray: np.ndarray) -> np.ndarray:
    """Hou & Zhang's spectral residual saliency of a small float image, normalised to [0, 1]."""
    spectrum = np.fft.fft2(gray)
    log_amp = np.log1p(np.abs(spectrum))
    phase = np.angle(spectrum)
    residual = log_amp - cv2.blur(log_amp, (3, 3))
    sal = np.abs(np.fft.ifft2(np.exp(residual + 1j * phase))) ** 2
    sal = cv2.GaussianBlur(sal, (0, 0), 2.5)
    return _normalise(sal)


def _normalise(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return np.zeros_like(a, np.float32) if hi - lo < 1e-9 else ((a - lo) / (hi - lo)).astype(np.float32)


def saliency_map(frame: np.ndarray, size: int = 128) -> np.ndarray:
    """Saliency of an RGB frame at long side ``size`` (float32 in [0, 1])."""
    h, w = frame.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(frame, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    sr = spectral_residual(lab[..., 0] / 255.0)
    # colour distinctiveness: distance to the nearest of a few border colours
    border = np.concatenate([lab[:3].reshape(-1, 3), lab[-3:].reshape(-1, 3), lab[:, :3].reshape(-1, 3),
                             lab[:, -3:].reshape(-1, 3)])
    k = min(4, len(border))
    cv2.setRNGSeed(0)  # k-means++ draws from OpenCV's global RNG: seed it, or the box depends on earlier calls
    _, _, centres = cv2.kmeans(border, k, None, (cv2.TERM_CRITERIA_MAX_ITER, 10, 1.0), 2, cv2.KMEANS_PP_CENTERS)
    dist = np.min(np.linalg.norm(lab[:, :, None, :] - centres[None, None], axis=-1), axis=-1)
    colour = np.clip(dist / 60.0, 0, 1)  # ~60 Lab units = clearly distinct
    colour = cv2.GaussianBlur(colour.astype(np.float32), (0, 0), 1.5)
    yy, xx = np.mgrid[0:small.shape[0], 0:small.shape[1]].astype(np.float32)
    cy, cx = (small.shape[0] - 1) / 2, (small.shape[1] - 1) / 2
    centre = np.exp(-(((xx - cx) / (0.45 * small.shape[1])) ** 2 + ((yy - cy) / (0.45 * small.shape[0])) ** 2))
    return (centre * (0.65 * colour + 0.35 * sr)).astype(np.float32)


def salient_box(frame: np.ndarray) -> tuple[Box | None, float]:
    """The box of the most salient region of the spectral-residual map and its contrast (``None`` when the map is
    flat)."""
    sal = saliency_map(frame)
    if float(sal.max()) < 1e-3:
        return None, 0.0
    u8 = (255 * sal / sal.max()).astype(np.uint8)
    _, binary = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    return _component_box(sal, binary, frame.shape[:2], "saliency")


def network_box(net: object, frame: np.ndarray, threshold: float = 0.5, size: int = 320, join: float = 1.0
                ) -> tuple[Box | None, float]:
    """The same from U²-Net-p's map (:mod:`pvtt.models.u2net`), cut at ``threshold``: a network trained to find
    the object a picture is about, where the spectral residual finds what stands out of the frame's texture. The
    components whose saliency mass reaches ``join`` times the largest's join its box: U²-Net marks each piece of a
    set (two bracelets, two vases) as salient, apart, and about as strongly."""
    sal, binary = _network_cut(net, frame, threshold, size)
    return _component_box(sal, binary, frame.shape[:2], "saliency-u2netp", join)


def network_pieces(net: object, frame: np.ndarray, threshold: float = 0.5, size: int = 320) -> np.ndarray:
    """The saliency mass of each piece of U²-Net-p's map of ``frame`` cut at ``threshold``, over the largest's,
    largest first (what ``join`` compares; empty when nothing is salient)."""
    mass = _pieces(*_network_cut(net, frame, threshold, size))[1]
    return np.sort(mass)[::-1] / mass.max() if len(mass) else mass


def _network_cut(net: object, frame: np.ndarray, threshold: float, size: int) -> tuple[np.ndarray, np.ndarray]:
    """U²-Net-p's map of ``frame`` at ``size`` and its cut at ``threshold`` (uint8, nothing set where no pixel is
    salient enough)."""
    from pvtt.models.u2net import saliency

    sal = saliency(net, frame, size)
    return sal, (sal > threshold).astype(np.uint8)


def _pieces(sal: np.ndarray, binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The connected pieces of ``binary``: their ``cv2.connectedComponentsWithStats`` rows and saliency masses."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary)
    return stats[1:], np.bincount(labels.ravel(), weights=sal.ravel(), minlength=count)[1:]


def _component_box(sal: np.ndarray, binary: np.ndarray, shape: tuple[int, int], source: str, join: float = 1.0
                   ) -> tuple[Box | None, float]:
    """The box (frame pixels, for a frame of ``shape``) of the component of ``binary`` with the most saliency mass,
    not just the largest, joined by every component with at least ``join`` times its mass (1: none), and its
    contrast: mean ``sal`` inside the box minus outside, over the map's maximum."""
    h, w = shape
    stats, mass = _pieces(sal, binary)
    if not len(mass):
        return None, 0.0
    kept = stats[mass >= min(join, 1.0) * mass.max()]
    x, y = kept[:, 0].min(), kept[:, 1].min()
    bw, bh = (kept[:, 0] + kept[:, 2]).max() - x, (kept[:, 1] + kept[:, 3]).max() - y
    inside = np.zeros_like(binary, bool)
    inside[y:y + bh, x:x + bw] = True
    contrast = float(sal[inside].mean() - (sal[~inside].mean() if (~inside).any() else 0.0)) / float(sal.max())
    sx, sy = w / sal.shape[1], h / sal.shape[0]
    box = Box(x * sx, y * sy, (x + bw) * sx, (y + bh) * sy, confidence=float(np.clip(contrast, 0, 1)), source=source)
    return box, contrast
