"""Pairing: cross clips (product A) with product photos (product B), each pair graded by difficulty.

Strategies (``pairing.strategy``): ``all`` (every clip × every other template's product),
``same-category`` (only products of the clip's category), ``sampled:K`` (K products per clip, drawn
from a generator seeded by ``seed`` and the clip's id, so adding clips never changes other clips'
pairs), and ``same-category:K``. A clip is never paired with its own template's product.

With ``fit_only`` (the default), a clip × product combination whose product cannot fit A's slot is left out
before any is drawn: B scaled to A's visible area changes scale more than ``insert.max_scale_change`` against
A's box, leaves the frame by more than ``insert.max_outside``, or is cut by a frame edge that A stays clear of
(``insert.max_outside_clear``; :func:`pvtt.compose.slot_misfit`, the reason
the insert stage would reject the pair with); ``sampled:K`` then draws K among the products that fit.

Difficulty: ``easy`` same subcategory; ``medium`` same category; ``hard`` different category with a
similar silhouette (:func:`shape_similarity` ≥ ``hard_shape_threshold``); ``expert`` otherwise.

:func:`make_pairs` works on silhouettes and categories alone; :func:`make_pair_items` reads them from the
workspace (A's first mask, B's target image) and gives the pair stages their :class:`PairItem`, with an
instruction each.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import Field, field_validator

from pvtt import artifacts
from pvtt.compose import area_matched_size, slot_misfit
from pvtt.instruction import make_instruction
from pvtt.items import ClipItem, ProductItem
from pvtt.settings import Settings
from pvtt.store import Workspace
from pvtt.types import Box

log = logging.getLogger("pvtt")


@dataclass
class PairClip:
    clip_id: str
    template_id: str
    category: str | None = None
    subcategory: str | None = None
    silhouette: np.ndarray | None = None  # A's frame-0 mask cropped to its bbox
    box: Box | None = None  # A's located box (where insert places B)
    frame: tuple[int, int] | None = None  # (width, height) of the clip


@dataclass
class PairProduct:
    product_id: str
    template_id: str | None = None
    category: str | None = None
    subcategory: str | None = None
    silhouette: np.ndarray | None = None  # cutout alpha > 0.5, cropped to its bbox


@dataclass
class Pair:
    pair_id: str
    clip_id: str
    product_id: str
    difficulty: str  # easy | medium | hard | expert
    shape_similarity: float  # 0..1; 0 when a silhouette is unknown


@dataclass
class PairItem:
    """A pair as the pair-level stages take it: the clip and the product items, graded, with the instruction."""

    id: str
    clip: ClipItem
    product: ProductItem
    difficulty: str
    shape_similarity: float
    instruction: str
    caption: str | None = None  # the clip's dense caption (pairing.instruction: vlm)


class PairingSettings(Settings):
    strategy: str = "sampled:2"
    """all | same-category | sampled:K | same-category:K (K products per clip, drawn reproducibly)."""
    seed: int = 0
    """Seed of the sampled strategies."""
    hard_shape_threshold: float = Field(0.6, ge=0, le=1)
    """Silhouette similarity at or above which a cross-category pair is 'hard' (else 'expert')."""
    silhouette_size: int = Field(64, ge=8)
    """Side of the square canvas silhouettes are compared on."""
    fit_only: bool = True
    """Leave out a clip x product combination whose product cannot fit A's slot, the insert stage's rejection known
    before any work: B scaled to A's visible area changes scale more than insert.max_scale_change against A's box,
    leaves the frame by more than insert.max_outside, or is cut by a frame edge that A stays clear of
    (insert.max_outside_clear). sampled:K then draws K among the products that fit; the count left out is logged."""
    instruction: Literal["template", "vlm"] = "template"
    """A pair's edit instruction: 'template' (one of several phrasings, seeded) or 'vlm' (Ditto-1M's two steps with
    the `vlm` model: a dense caption per clip, then an instruction per pair from the caption and B's description,
    text only; both cached). With 'vlm' the build stops at its start when the VLM weights are missing; a pair whose
    instruction fails is not synthesized (its `instruct` record says why)."""

    @field_validator("strategy")
    @classmethod
    def _check_strategy(cls, value: str) -> str:
        _parse(value)
        return value


def _parse(strategy: str) -> tuple[str, int | None]:
    kind, _, count = strategy.partition(":")
    if kind not in ("all", "same-category", "sampled") or (kind == "sampled" and not count) or \
            (kind == "all" and count):
        raise ValueError(f"pairing.strategy must be all, same-category, sampled:K or same-category:K, got {strategy!r}")
    if count:
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"pairing.strategy count must be a positive integer, got {count!r} in {strategy!r}")
        return kind, int(count)
    return kind, None


def _normalise(mask: np.ndarray, size: int) -> np.ndarray | None:
    mask = np.asarray(mask)
    mask = mask > (0.5 if mask.dtype != np.uint8 else 127) if mask.dtype != bool else mask
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8)
    h, w = crop.shape
    side = max(h, w)
    canvas = np.zeros((side, side), np.uint8)
    canvas[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = crop
    return cv2.resize(canvas * 255, (size, size), interpolation=cv2.INTER_AREA) > 127


def shape_similarity(a: np.ndarray, b: np.ndarray, size: int = 64) -> float:
    """IoU of two silhouettes, each cropped to its bbox and centred on a square canvas (aspect kept, so different
    aspect ratios lower the score); the best of B as is and mirrored. 0 when either is empty."""
    na, nb = _normalise(a, size), _normalise(b, size)
    if na is None or nb is None:
        return 0.0
    best = 0.0
    for cand in (nb, nb[:, ::-1]):
        union = (na | cand).sum()
        best = max(best, float((na & cand).sum() / union) if union else 0.0)
    return best


def _same(x: str | None, y: str | None) -> bool:
    return x is not None and y is not None and x.strip().lower() == y.strip().lower()


def grade(clip: PairClip, product: PairProduct, settings: PairingSettings) -> tuple[str, float]:
    """(difficulty, shape similarity) of one pair."""
    sim = 0.0
    if clip.silhouette is not None and product.silhouette is not None:
        sim = shape_similarity(clip.silhouette, product.silhouette, settings.silhouette_size)
    if _same(clip.category, product.category):
        return ("easy" if _same(clip.subcategory, product.subcategory) else "medium"), sim
    return ("hard" if sim >= settings.hard_shape_threshold else "expert"), sim


def misfit(clip: PairClip, product: PairProduct, insert: Any) -> str | None:
    """Why ``product`` cannot fit ``clip``'s slot with the ``insert`` settings (None: it fits, or a silhouette,
    box or frame is unknown)."""
    if clip.silhouette is None or product.silhouette is None or clip.box is None or clip.frame is None:
        return None
    if not product.silhouette.any():
        return None
    _, width, height = area_matched_size(float(clip.silhouette.sum()), product.silhouette)
    return slot_misfit(clip.box, width, height, *clip.frame, insert)


def make_pairs(clips: list[PairClip], products: list[PairProduct], settings: PairingSettings | None = None,
               insert: Any = None) -> list[Pair]:
    """The pairs of ``clips`` × ``products`` chosen by ``settings.strategy``, sorted by pair id; with ``insert``
    (the insert settings) and ``settings.fit_only``, only products that fit each clip's slot are drawn."""
    settings = settings or PairingSettings()
    kind, count = _parse(settings.strategy)
    products = sorted(products, key=lambda p: p.product_id)
    pairs, left_out = [], 0
    for clip in sorted(clips, key=lambda c: c.clip_id):
        eligible = [p for p in products if p.template_id is None or p.template_id != clip.template_id]
        if kind == "same-category":
            eligible = [p for p in eligible if _same(p.category, clip.category)]
        if insert is not None and settings.fit_only:
            fitting = [p for p in eligible if misfit(clip, p, insert) is None]
            left_out += len(eligible) - len(fitting)
            eligible = fitting
        if count is not None and len(eligible) > count:
            rng = np.random.default_rng([settings.seed, zlib.crc32(clip.clip_id.encode())])
            chosen = sorted(rng.choice(len(eligible), count, replace=False))
            eligible = [eligible[i] for i in chosen]
        for product in eligible:
            difficulty, sim = grade(clip, product, settings)
            pairs.append(Pair(f"{clip.clip_id}__{product.product_id}", clip.clip_id, product.product_id, difficulty,
                              round(sim, 4)))
    if left_out:
        log.info("pairing: %d clip x product combination(s) left out: the product cannot fit A's slot "
                 "(insert.max_scale_change / max_outside / max_outside_clear; pairing.fit_only)", left_out)
    return sorted(pairs, key=lambda p: p.pair_id)


def _crop(mask: np.ndarray) -> np.ndarray | None:
    """``mask`` cropped to the box of its pixels (None: empty)."""
    ys, xs = np.nonzero(mask)
    return mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1] if len(xs) else None


def make_pair_items(ws: Workspace, clips: list[ClipItem], products: list[ProductItem], config: Any) -> list[PairItem]:
    """Cross the surviving clips with the cut-out products (``pairing`` settings), with an instruction each."""
    pair_clips = []
    for clip in clips:
        mask = artifacts.masks(ws, clip.id).data[0]
        pair_clips.append(PairClip(clip.id, clip.template_id, clip.category, clip.subcategory, _crop(mask),
                                   artifacts.box(ws, clip.id), (mask.shape[1], mask.shape[0])))
    pair_products = []
    for product in products:
        alpha = _crop(artifacts.cutout(ws, product.id)[..., 3] > 127)
        pair_products.append(PairProduct(product.id, product.template_id, product.category, product.subcategory,
                                         alpha))
    by_clip = {c.id: c for c in clips}
    by_product = {p.id: p for p in products}
    items = []
    for n, pair in enumerate(make_pairs(pair_clips, pair_products, config.pairing, config.insert)):
        clip, product = by_clip[pair.clip_id], by_product[pair.product_id]
        source = clip.description or clip.subcategory or clip.category
        target = product.description or product.subcategory or product.category
        instruction = make_instruction(source, target, seed=config.pairing.seed + n)
        items.append(PairItem(pair.pair_id, clip, product, pair.difficulty, round(float(pair.shape_similarity), 4),
                              instruction))
    return items


__all__ = ["Pair", "PairClip", "PairItem", "PairProduct", "PairingSettings", "grade", "make_pair_items", "make_pairs",
           "misfit", "shape_similarity"]
