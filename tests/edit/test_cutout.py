"""Cutout on plain backdrops where the product is close to the backdrop's colour."""

from __future__ import annotations

import numpy as np

from pvtt.cutout import make_cutter
from pvtt.types import ProductImage


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _studio_photo(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A white-to-grey sweep with a speckled off-white vase (striped in tan) on it, and the vase's true mask."""
    rng = np.random.default_rng(seed)
    h, w = 300, 240
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    sweep = 238 - 30 * (yy / h) - 10 * (xx / w)  # light falloff of a studio sweep
    img = np.repeat(sweep[..., None], 3, axis=2) + rng.normal(0, 1.5, (h, w, 3))
    truth = ((xx - 120) / 60) ** 2 + ((yy - 160) / 90) ** 2 < 1
    vase = np.full((h, w, 3), (226.0, 222.0, 214.0)) + rng.normal(0, 2, (h, w, 3))
    speckles = rng.random((h, w)) < 0.06
    vase[speckles] = (120, 100, 80)
    vase[(xx.astype(int) // 12) % 3 == 0] = (170, 130, 90)  # tan stripes
    img[truth] = vase[truth]
    return np.clip(img, 0, 255).astype(np.uint8), truth


def test_off_white_product_on_a_white_sweep_is_cut_out_whole():
    rgb, truth = _studio_photo()
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    cut = make_cutter().cut_out(ProductImage("vase", rgba))
    assert "plain background" in cut.notes
    # the result is trimmed to the product (+ margin): compare inside the true box, mapped back
    ys, xs = np.nonzero(truth)
    alpha = cut.rgba[..., 3] > 127
    ay, ax = np.nonzero(alpha)
    assert abs((ax.max() - ax.min()) - (xs.max() - xs.min())) <= 10
    assert abs((ay.max() - ay.min()) - (ys.max() - ys.min())) <= 10
    full = np.zeros_like(truth)
    full[ys.min():ys.min() + ay.max() - ay.min() + 1, xs.min():xs.min() + ax.max() - ax.min() + 1] = \
        alpha[ay.min():ay.max() + 1, ax.min():ax.max() + 1]
    assert _iou(full, truth) > 0.9
    assert not cut.low_confidence


def test_the_smooth_rim_of_shadow_and_reflected_light_is_peeled_off():
    """The vase throws a warm, soft shadow on the sweep (darker and warmer than the backdrop, fading over 14 px):
    GrabCut takes most of it with the vase, and B would carry a pale band onto its new background (MEDI001's box and
    ART001's vases did). The peel stops at the vase's outline."""
    import cv2

    rgb, truth = _studio_photo()
    dist = cv2.distanceTransform((~truth).astype(np.uint8), cv2.DIST_L2, 3)
    fall = np.clip(1 - dist / 14, 0, 1) * ((dist > 0) & (dist < 14))
    img = np.clip(rgb.astype(np.float32) - fall[..., None] * np.array([22.0, 28.0, 38.0]), 0, 255).astype(np.uint8)
    rgba = np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])
    kept = make_cutter(peel_rim=0, margin=0.0).cut_out(ProductImage("vase", rgba))
    peeled = make_cutter(margin=0.0).cut_out(ProductImage("vase", rgba))
    area = truth.sum()
    assert (kept.rgba[..., 3] > 127).sum() > 1.15 * area  # the band, without the peel
    assert 0.97 * area < (peeled.rgba[..., 3] > 127).sum() < 1.06 * area
    assert "smooth rim peeled off" in peeled.notes


def test_the_redrawn_outline_drops_a_backdrop_strip_and_keeps_a_thin_cord():
    """A work-resolution cut that runs through the smooth backdrop beside the vase (a strip along its side: the white
    chunks ART001's vases carried) is pulled back onto the vase's edge by the redraw; a braided cord thinner than the
    band, standing free of the vase, stays whole (GrabCut alone would hand a cord close to the backdrop's colour to
    the backdrop)."""
    import cv2

    from pvtt.cutout.classical import redraw_outline

    rgb, vase = _studio_photo()
    cord = np.zeros(vase.shape, np.uint8)
    cv2.line(cord, (150, 80), (225, 10), 1, 4)
    cord = cord.astype(bool) & ~vase
    braid = (np.indices(vase.shape).sum(axis=0) % 4 < 2)
    rgb[cord] = np.where(braid[cord, None], (205, 205, 210), (150, 150, 160))  # a silver braid: light and dark
    truth = vase | cord
    strip = np.zeros_like(vase)
    strip[110:210, 150:240] = True
    strip &= ~vase & (cv2.dilate(vase.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0)  # 4 px along its side
    work = truth | strip
    redrawn = redraw_outline(rgb, work, long_side=300, band=0.012, iters=5)  # the band: 5 px at this size
    assert redrawn.shape == truth.shape
    assert (redrawn & strip).sum() < 0.2 * strip.sum(), (redrawn & strip).sum() / strip.sum()
    assert (redrawn & cord).sum() > 0.9 * cord.sum(), (redrawn & cord).sum() / cord.sum()
    assert _iou(redrawn, truth) > max(0.96, _iou(work, truth) + 0.005), (_iou(redrawn, truth), _iou(work, truth))


def test_backdrop_peel_removes_what_reaches_the_backdrop_and_keeps_enclosed_parts():
    from pvtt.cutout.classical import _peel_backdrop

    fg = np.zeros((60, 100), bool)
    fg[20:40, 10:40] = fg[20:40, 60:90] = True  # two products
    fg[25:35, 40:60] = True  # GrabCut's bridge between them
    backdrop = ~fg.copy()
    backdrop[25:35, 40:60] = True  # the bridge is backdrop-like, and touches the backdrop above and below it
    backdrop[28:32, 20:30] = True  # a backdrop-coloured patch enclosed by the first product: product, kept
    peeled, share = _peel_backdrop(fg, backdrop)
    assert not peeled[25:35, 42:58].any()  # the bridge is gone
    assert peeled[28:32, 20:30].all() and peeled[21:39, 11:39].all() and peeled[21:39, 61:89].all()
    assert abs(share - (10 * 20) / fg.sum()) < 0.05
    nothing, zero = _peel_backdrop(fg, np.zeros_like(fg))
    assert (nothing == fg).all() and zero == 0.0


def test_enclosed_peel_takes_a_large_backdrop_region_inside_a_ring_and_keeps_small_ones():
    from pvtt.cutout.classical import _peel_enclosed

    fg = np.zeros((100, 100), bool)
    fg[10:90, 10:90] = True  # a bracelet GrabCut cut out with the cloth inside it
    backdrop = np.zeros_like(fg)
    backdrop[20:80, 20:80] = True  # the cloth inside: 0.56 of the cut, reaching no backdrop outside
    peeled, share, _ = _peel_enclosed(fg, backdrop, 0.15)
    assert not peeled[22:78, 22:78].any() and peeled[10:18, 10:90].all()
    assert abs(share - 3600 / 6400) < 0.02
    kept, zero, _ = _peel_enclosed(fg, backdrop, 1.0)  # off
    assert (kept == fg).all() and zero == 0.0
    small = np.zeros_like(fg)
    small[40:50, 40:50] = True  # a pale face of the product, 0.016 of it: product, kept
    kept, zero, _ = _peel_enclosed(fg, small, 0.15)
    assert (kept == fg).all() and zero == 0.0
    # the same small region of the backdrop's very colour (seen through a handle) is peeled at any size
    dist = np.full(fg.shape, 9.0, np.float32)
    kept, zero, _ = _peel_enclosed(fg, small, 0.15, dist, exact=3.0)
    assert (kept == fg).all() and zero == 0.0  # 9 levels off the backdrop: a face, kept
    dist[40:50, 40:50] = 1.0
    peeled, share, exact = _peel_enclosed(fg, small, 0.15, dist, exact=3.0)
    assert not peeled[41:49, 41:49].any() and exact[40:50, 40:50].all() and exact.sum() == 100


def test_the_backdrop_seen_through_a_mugs_handle_is_cut_away():
    from pvtt.cutout import CutoutSettings
    from pvtt.demo import product_photo

    photo = product_photo(0, seed=0)  # the demo's mug on a clean white backdrop (250)

    def backdrop_kept(**overrides) -> int:
        rgba = make_cutter(CutoutSettings(**overrides)).cut_out(ProductImage("mug", photo)).rgba
        return int(((rgba[..., 3] > 200) & (rgba[..., :3].min(-1) > 240)).sum())  # opaque backdrop white

    assert backdrop_kept(peel_exact=0.0) > 600  # the handle's inside, 0.024 of the cut
    assert backdrop_kept() < 60


def test_support_ratio_fills_a_rings_loop_and_still_sees_a_table():
    from pvtt.cutout import support_ratio

    ring = np.zeros((100, 100), bool)
    ring[10:90, 20:80] = True
    ring[16:80, 26:74] = False  # the loop, peeled; its clasp bar (rows 80-90) is the bottom
    assert support_ratio(ring) < 1.1
    table = ring.copy()
    table[88:100, :] = True  # a table strip cut out under it, the full width
    assert support_ratio(table) > 1.3


def test_soft_edges_carry_the_products_colour_not_the_backdrops():
    """A red disc photographed on white with a soft (anti-aliased, slightly blurred) edge: pasted over black, the
    photo's own colours bring a white fringe along (the green channel rises in the edge band); the decontaminated
    cutout's band holds the disc's red only, and its solid and clear pixels are untouched."""
    import cv2

    from pvtt.cutout.alpha import decontaminate, with_alpha

    h, w = 200, 200
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    alpha = cv2.GaussianBlur(((xx - 100) ** 2 + (yy - 100) ** 2 < 60 ** 2).astype(np.float32), (0, 0), 3.0)
    photo = (alpha[..., None] * np.array([200.0, 20.0, 30.0]) + (1 - alpha[..., None]) * 255.0).round().astype(np.uint8)
    band = (alpha > 0.1) & (alpha < 0.9)

    def pasted_green(rgb: np.ndarray) -> float:  # the green that pasting over black leaves in the band
        return float((rgb[..., 1].astype(np.float32) * alpha)[band].max())

    cleaned = decontaminate(photo, alpha)
    assert pasted_green(photo) > 50  # the fringe: white mixed into the edge (up to a(1 - a) x 255)
    assert pasted_green(cleaned) < 25  # the disc's own green (20) only
    assert np.abs(cleaned[band].astype(int) - (200, 20, 30)).max() <= 6
    solid_or_clear = (alpha >= 0.97) | (alpha <= 0.03)
    assert np.array_equal(cleaned[solid_or_clear], photo[solid_or_clear])
    assert np.array_equal(with_alpha(photo, alpha)[..., :3], cleaned)


def test_a_cut_through_a_contact_shadow_is_measured_as_a_smooth_base():
    """The vase throws a soft shadow below it, fading over 40 px. A cut that ends at the vase's outline runs along
    edges; a cut that took 25 px of the shadow with it (MEDI001's box) ends in the shadow's smooth ramp. The measure
    is the same on a copy of the photo at half the size (it works at a fixed long side)."""
    import cv2

    from pvtt.cutout import smooth_base

    rgb, truth = _studio_photo()
    dist = cv2.distanceTransform((~truth).astype(np.uint8), cv2.DIST_L2, 3)
    yy = np.mgrid[:truth.shape[0], :truth.shape[1]][0]
    centre = np.nonzero(truth)[0].mean()
    below = (yy > centre) & (dist > 0) & (dist < 40)
    fall = np.where(below, 1 - dist / 40, 0.0)
    img = np.clip(rgb.astype(np.float32) - fall[..., None] * np.array([50.0, 55.0, 60.0]), 0, 255).astype(np.uint8)
    with_shadow = truth | (below & (dist < 25))
    clean, shadowed = smooth_base(img, truth.astype(np.float32)), smooth_base(img, with_shadow.astype(np.float32))
    assert clean < 0.1 and shadowed > 0.6, (clean, shadowed)
    half = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    small = cv2.resize(with_shadow.astype(np.uint8) * 255, half.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert abs(smooth_base(half, small) - shadowed) < 0.15
    # the classical cutter reports it for the cutout stage to check: its cut of this photo keeps part of the shadow
    cut = make_cutter().cut_out(ProductImage("vase", np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])))
    assert cut.measures["smooth_base"] > 0.5


def test_outline_pixels_that_mix_product_and_backdrop_at_full_opacity_are_made_soft():
    from pvtt.cutout.alpha import unmix_edge

    rgb = np.full((60, 60, 3), 250, np.uint8)  # white backdrop
    rgb[10:50, 10:40] = (120, 50, 30)  # a dark brown product
    alpha = np.zeros((60, 60), np.float32)
    alpha[10:50, 10:41] = 1.0  # the cut holds one column too many at full opacity...
    rgb[10:50, 40] = (0.25 * np.array([120, 50, 30]) + 0.75 * 250).astype(np.uint8)  # ...a 25/75 mix with white
    out = unmix_edge(rgb, alpha)
    assert np.allclose(out[12:48, 40], 0.25, atol=0.03)  # its alpha is the product's share of its colour
    assert (out[10:50, 10:39] == 1).all() and (out[alpha == 0] == 0).all()  # the rest unchanged
    pure = rgb.copy()
    pure[10:50, 40] = (120, 50, 30)  # the same column of the product's own colour: kept opaque
    assert (unmix_edge(pure, alpha)[12:48, 40] > 0.97).all()
    dim = np.full_like(rgb, 250)
    dim[10:50, 10:41] = 230  # too little contrast with the backdrop to solve the mix: unchanged
    assert (unmix_edge(dim, alpha) == alpha).all()
