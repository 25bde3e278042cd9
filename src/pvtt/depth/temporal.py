"""Temporal stabilization of per-frame relative depth.

Monocular depth networks predict each frame up to its own unknown scale and shift, so a raw depth
video flickers. :func:`stabilize_depth` fits, for every frame, the scale ``s`` and shift ``b`` that
best map it onto a running reference (least squares on a pixel grid, refit without the worst
residuals so moving objects and newly visible regions weigh less), then blends with an EMA. The
first frame fixes the scale and shift of the whole clip.
"""

from __future__ import annotations

import numpy as np


def fit_scale_shift(source: np.ndarray, target: np.ndarray, trim: float = 0.3,
                    iterations: int = 4) -> tuple[float, float]:
    """``(s, b)`` minimizing ``|s * source + b - target|²`` over the pixels that fit best.

    A least-trimmed-squares fit: after a first fit on every pixel, each refit keeps the ``1 - trim``
    fraction of pixels with the smallest residuals, so regions whose depth really changed (a moving
    object, newly visible background) do not bend the frame's scale.
    """
    x_all = source.reshape(-1).astype(np.float64)
    y_all = target.reshape(-1).astype(np.float64)
    keep = np.isfinite(x_all) & np.isfinite(y_all)
    x_all, y_all = x_all[keep], y_all[keep]
    if x_all.size < 2 or np.ptp(x_all) < 1e-12:
        return 1.0, float(np.mean(y_all) - np.mean(x_all)) if x_all.size else 0.0
    x, y = x_all, y_all
    s, b = 1.0, 0.0
    for i in range(max(1, iterations)):
        a = np.stack([x, np.ones_like(x)], axis=1)
        (s, b), *_ = np.linalg.lstsq(a, y, rcond=None)
        if trim <= 0 or i == iterations - 1:
            break
        residual = np.abs(s * x_all + b - y_all)
        inliers = residual <= np.quantile(residual, 1.0 - trim)
        if inliers.sum() < 2 or np.ptp(x_all[inliers]) < 1e-12:
            break
        x, y = x_all[inliers], y_all[inliers]
    return float(s), float(b)


def stabilize_depth(depth: np.ndarray, ema: float = 0.6, align: bool = True, grid: int = 64) -> np.ndarray:
    """``(T, H, W)`` per-frame relative depth → the same with one scale/shift for the clip and EMA smoothing.

    ``ema`` is the weight of the current (aligned) frame; 1 keeps frames as aligned. ``grid`` is the
    number of sample rows/columns used for the fit (the fit is on a subsampled grid for speed).
    """
    depth = np.asarray(depth, np.float32)
    if depth.ndim != 3:
        raise ValueError(f"depth must be (T, H, W), got shape {depth.shape}")

    def fit(source: np.ndarray, target: np.ndarray) -> tuple[np.float32, np.float32]:
        s, b = fit_scale_shift(source, target)
        return np.float32(s), np.float32(b)

    return _align_and_smooth(depth, np.empty_like(depth), ema, align, grid, fit)


def stabilize_depth_torch(depth, ema: float = 0.6, align: bool = True, grid: int = 64, trim: float = 0.3,
                          iterations: int = 4):
    """:func:`stabilize_depth` on a ``(T, h, w)`` torch tensor, on its device.

    The same least-trimmed-squares scale/shift fit (closed form) and EMA, so a GPU backend can
    stabilize at the network's resolution and upsample last, instead of sending full-resolution
    maps to the host first.
    """
    import torch

    if depth.ndim != 3:
        raise ValueError(f"depth must be (T, h, w), got shape {tuple(depth.shape)}")

    def fit(source, target):  # written without host synchronisation: masks as weights, no data-dependent branches
        x, y = source.reshape(-1).double(), target.reshape(-1).double()
        w = torch.ones_like(x)
        for i in range(max(1, iterations)):
            n = w.sum().clamp_min(1.0)
            mx, my = (w * x).sum() / n, (w * y).sum() / n
            var = (w * (x - mx) ** 2).sum()
            s = torch.where(var > 1e-12, (w * (x - mx) * (y - my)).sum() / var.clamp_min(1e-12), torch.ones_like(var))
            b = my - s * mx
            if trim <= 0 or i == iterations - 1:
                break
            residual = (s * x + b - y).abs()
            w = (residual <= torch.quantile(residual, 1.0 - trim)).double()
        return s.float(), b.float()

    depth = depth.float()
    return _align_and_smooth(depth, torch.empty_like(depth), ema, align, grid, fit)


def _align_and_smooth(depth, out, ema: float, align: bool, grid: int, fit):
    """The loop of both stabilizers, on numpy arrays or torch tensors: frame ``t`` mapped onto the running
    reference by ``fit(frame, reference) -> (s, b)`` on a ``grid`` of pixels, then blended into it with the EMA;
    written into ``out`` (empty, like ``depth``)."""
    if not 0 < ema <= 1:
        raise ValueError(f"ema must be in (0, 1], got {ema}")
    step_y = max(1, depth.shape[1] // grid)
    step_x = max(1, depth.shape[2] // grid)
    out[0] = state = depth[0]
    for t in range(1, depth.shape[0]):
        frame = depth[t]
        if align:
            s, b = fit(frame[::step_y, ::step_x], state[::step_y, ::step_x])
            frame = frame * s + b
        state = ema * frame + (1.0 - ema) * state
        out[t] = state
    return out
