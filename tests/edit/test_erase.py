"""Erase: the fill follows each frame's lighting (no seam, no stale brightness), and where no frame shows the
background the fill keeps the surroundings' texture instead of smearing it."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from pvtt.erase import EraseSettings, make_eraser
from pvtt.erase import classical
from pvtt.erase.classical import fill_unseen, xphoto_available
from pvtt.types import Clip, Masks


def _lit_clip(t_count: int = 10) -> tuple[Clip, Masks, np.ndarray]:
    """A still product on a smooth backdrop whose light ramps up 30% over the clip; the product never moves, so
    the background behind it is never visible. Returns the clip, A's masks and the true background frames."""
    h, w = 120, 160
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    backdrop = np.stack([150 + 30 * xx / w, 120 + 20 * yy / h, 170 - 10 * xx / w], -1)
    gains = np.linspace(0.85, 1.15, t_count)
    truth = np.stack([np.clip(backdrop * g, 0, 255) for g in gains]).astype(np.uint8)
    frames = truth.copy()
    product = ((xx - 80) / 25) ** 2 + ((yy - 60) / 20) ** 2 < 1
    frames[:, product] = (40, 30, 20)
    return Clip("lit", frames, 20.0), Masks(np.repeat(product[None], t_count, 0)), truth


def test_fill_follows_the_lighting_of_each_frame():
    clip, masks, truth = _lit_clip()
    erased = make_eraser().erase(clip, masks)
    stale = make_eraser(seam_correction=False).erase(clip, masks)
    region = erased.region
    assert erased.info["never_visible_fraction"] > 0.9  # nothing to borrow: inpaint + warp only
    err = [np.abs(erased.frames[t][region[t]].astype(float) - truth[t][region[t]]).mean() for t in range(len(truth))]
    err_stale = [np.abs(stale.frames[t][region[t]].astype(float) - truth[t][region[t]]).mean()
                 for t in range(len(truth))]
    assert max(err) < 4.0, err
    assert err_stale[-1] > 3 * err[-1]  # without the correction the last frame keeps frame 0's light


def test_untouched_outside_the_region():
    clip, masks, _ = _lit_clip(4)
    erased = make_eraser().erase(clip, masks)
    outside = ~erased.region
    # the feathered blend may touch a thin band just outside the region, nothing beyond it
    band = np.zeros_like(outside)
    for t in range(len(band)):
        band[t] = cv2.dilate(erased.region[t].astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    far = outside & ~band
    assert np.array_equal(erased.frames[far], clip.frames[far])


def test_a_thin_product_across_the_frame_is_dilated_by_its_thickness_not_its_length():
    # a 20 px strap lying diagonally across a 720x900 frame (JEW002-s01's bracelets) and a compact 200 px disc
    strap = np.zeros((720, 900), np.uint8)
    cv2.line(strap, (20, 560), (880, 160), 1, 20)
    disc = np.zeros((720, 900), np.uint8)
    cv2.circle(disc, (450, 360), 100, 1, -1)
    strap, disc = strap > 0, disc > 0

    def band(mask: np.ndarray) -> float:  # mean width added on each side: grown area / perimeter
        grown = classical.dilate_region(mask, 0.04, 0.0)
        perimeter = cv2.arcLength(cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL,
                                                   cv2.CHAIN_APPROX_NONE)[0][0], True)
        return float((grown.sum() - mask.sum()) / perimeter)

    # the disc's 2·sqrt(area) (354 px) exceeds its box diagonal (283 px): dilated by 0.04 of the diagonal, as before
    assert 10 <= band(disc) <= 12.5
    # the strap's diagonal is its length (~950 px: a 38 px band); its area's scale (2·sqrt(area) ~ 280 px) gives ~11
    assert band(strap) < 14
    assert classical.dilate_region(strap, 0.04, 0.0)[strap].all()


def test_a_handles_opening_is_part_of_the_region_a_bracelets_loop_is_not():
    mug = np.zeros((300, 400), np.uint8)
    cv2.rectangle(mug, (100, 80), (220, 240), 1, -1)
    cv2.ellipse(mug, (220, 160), (50, 55), 0, -90, 90, 1, 14)  # the handle: an opening of ~0.1 of the mask
    opening = np.zeros_like(mug)
    cv2.ellipse(opening, (220, 160), (35, 40), 0, -90, 90, 1, -1)
    opening = (opening > 0) & (mug == 0)
    assert opening.sum() > 1000
    region = classical.dilate_region(mug > 0, 0.0, 0.0, 0.25)
    assert region[opening].all()
    assert not classical.dilate_region(mug > 0, 0.0, 0.0, 0.0)[opening].any()  # off
    loop = np.zeros((300, 400), np.uint8)
    cv2.ellipse(loop, (200, 150), (120, 60), 0, 0, 360, 1, 12)  # a bracelet lying flat: its loop ~2x its area
    inside = np.zeros_like(loop)
    cv2.ellipse(inside, (200, 150), (100, 40), 0, 0, 360, 1, -1)
    assert not classical.dilate_region(loop > 0, 0.0, 0.0, 0.25)[inside > 0].any()
    # the frame's edge closes no hole: a mask touching it leaves the outside alone
    edge = np.zeros((300, 400), bool)
    edge[:, :30] = True
    edge[100:140, 30:60] = True
    assert classical.dilate_region(edge, 0.0, 0.0, 0.25).sum() == edge.sum()


def _cloth_clip(t_count: int = 4) -> tuple[Clip, Masks, np.ndarray]:
    """A still product on a striped, grainy cloth; nothing moves, so the cloth behind it is never visible.
    Returns the clip, A's masks and the true background frames."""
    h, w = 120, 160
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    stripes = 60.0 * (np.sin(2 * np.pi * (xx + 0.5 * yy) / 12) > 0)
    cloth = np.stack([100 + stripes, 80 + 0.8 * stripes, 60 + 0.5 * stripes], -1) + rng.normal(0, 8, (h, w, 1))
    truth = np.repeat(np.clip(cloth, 0, 255).astype(np.uint8)[None], t_count, 0)
    frames = truth.copy()
    product = ((xx - 80) / 22) ** 2 + ((yy - 55) / 18) ** 2 < 1
    frames[:, product] = (200, 40, 40)
    return Clip("cloth", frames, 20.0), Masks(np.repeat(product[None], t_count, 0)), truth


def _gradient(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def _texture_ratio(filled: np.ndarray, truth: np.ndarray, region: np.ndarray) -> float:
    """Mean gradient magnitude of the fill / of the truth, 3 px inside the region (1.0: as textured, ≪ 1: smear)."""
    inner = cv2.erode(region.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    return float(_gradient(filled)[inner].mean() / _gradient(truth)[inner].mean())


needs_xphoto = pytest.mark.skipif(not xphoto_available(), reason="cv2.xphoto missing: the project depends on "
                                                                 "opencv-contrib-python-headless")


@needs_xphoto
def test_fill_keeps_the_texture_where_no_frame_shows_the_background():
    clip, masks, truth = _cloth_clip()
    erased = make_eraser().erase(clip, masks)
    assert erased.info["never_visible_fraction"] > 0.9  # nothing to borrow: the never-visible fill only
    assert erased.info["inpaint"] == EraseSettings().inpaint
    ratios = [_texture_ratio(f, t, r) for f, t, r in zip(erased.frames, truth, erased.region)]
    smears = {name: _texture_ratio(make_eraser(inpaint=name).erase(clip, masks).frames[0], truth[0],
                                   erased.region[0]) for name in ("telea", "membrane")}
    assert min(ratios) > 0.6, ratios  # as textured as the cloth, give or take
    assert max(smears.values()) < 0.45, smears  # what the default replaced: a smooth smear
    # one fill for the whole clip, warped: the same texture in every frame (no flicker)
    assert np.array_equal(erased.frames[0], erased.frames[-1])


@pytest.mark.parametrize("method", ["telea", "membrane", "shiftmap", "fsr-fast"])
def test_fill_changes_only_the_hole(method):
    if method in classical.XPHOTO_FILLS and not xphoto_available():
        pytest.skip("cv2.xphoto missing")
    _, masks, truth = _cloth_clip(1)
    hole = masks.data[0]
    holed = truth[0].copy()
    holed[hole] = 0
    filled = fill_unseen(holed, hole, method)
    assert np.array_equal(filled[~hole], holed[~hole])
    assert filled[hole].mean() > 40  # filled from the cloth (≥ 60 everywhere), not left black


def test_missing_xphoto_falls_back_to_membrane_with_a_warning(monkeypatch, caplog):
    clip, masks, _ = _cloth_clip(2)
    monkeypatch.setattr(classical, "xphoto_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="pvtt"):
        erased = make_eraser(inpaint="shiftmap").erase(clip, masks)
    assert any("cv2.xphoto" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert erased.info["inpaint"] == "membrane"
    assert np.array_equal(erased.frames, make_eraser(inpaint="membrane").erase(clip, masks).frames)


@needs_xphoto
def test_shiftmap_fill_of_a_hole_across_the_whole_frame_has_no_foreign_colour():
    """Shift-map finds no source for most of a band that spans the frame and leaves those pixels at zero, which in
    Lab is a saturated blue: the blue streaks of the development build. The fill must only hold colours of the
    frame around the hole (here the membrane's, where shift-map has nothing)."""
    from pvtt.testmedia import textured_background

    image = textured_background(180, 240, 3, detail=10.0)
    hole = np.zeros((180, 240), bool)
    hole[50:130] = True
    filled = fill_unseen(image, hole, "shiftmap")
    known = image[~hole].reshape(-1, 3).astype(int)
    low, high = known.min(0) - 10, known.max(0) + 10
    inside = filled[hole].astype(int)
    assert not (inside == (0, 64, 194)).all(axis=1).any()
    assert ((inside >= low) & (inside <= high)).all(axis=1).mean() == 1.0, (low, high)


def test_fill_beyond_frame_0s_view_is_not_darkened_by_its_edge():
    """A camera panning right (by a fraction of a pixel's multiple) over a dark bar that runs out of the frame: what
    later frames show beyond frame 0's right edge was never visible and is inpainted there. The samples on the edge
    of frame 0's view must not be blended with the black outside it (smeared into dark wedges on JEW002-s01; here
    the old code's fill went down to 319 against the backdrop's darkest 451, as a sum of RGB)."""
    rng = np.random.default_rng(0)
    h, w, t_count, pan = 96, 128, 8, 2.6
    world_w = w + 32
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (h, world_w)).astype(np.float32), (0, 0), 2.0)
    texture = 6 * (texture - texture.mean()) / texture.std()
    world = np.clip(np.stack([170 + texture, 150 + texture, 200 + texture], -1), 0, 255).astype(np.uint8)
    bar = np.zeros((h, world_w), np.uint8)
    bar[40:56, 90:] = 1  # A: a dark bar from x=90 to beyond every frame's right edge
    world_a = world.copy()
    world_a[bar > 0] = (30, 25, 35)

    def view(image: np.ndarray, t: int, flags: int) -> np.ndarray:
        return cv2.warpAffine(image, np.float32([[1, 0, -pan * t], [0, 1, 0]]), (w, h), flags=flags)

    frames = np.stack([view(world_a, t, cv2.INTER_LINEAR) for t in range(t_count)])
    masks = np.stack([view(bar, t, cv2.INTER_NEAREST) > 0 for t in range(t_count)])
    erased = make_eraser(dilate=0.1, inpaint="membrane").erase(Clip("pan", frames, 20.0), Masks(masks))
    assert erased.info["never_visible_fraction"] > 0.9
    floor = world.reshape(-1, 3).astype(int).sum(1).min()  # the darkest backdrop pixel
    for t in range(1, t_count):
        fill = erased.frames[t][erased.region[t]].astype(int).sum(1)
        assert fill.min() > 0.95 * floor, f"frame {t}: fill as dark as {fill.min()} against the backdrop's {floor}"


@needs_xphoto
def test_a_hole_from_a_wall_into_a_table_keeps_the_tables_texture():
    """A product standing from a flat wall down into a textured table, its region reaching the frame's bottom: in
    the narrow crop shift-map pulled the wall's colour down into the table's rows (the demo's smears); the wide
    crop's fill keeps them textured, and the texture mismatch beside the hole picks it."""
    from pvtt.compose import row_texture_mismatch
    from pvtt.testmedia import textured_background

    scene = textured_background(360, 480, 3, detail=10.0)
    rng = np.random.default_rng(0)
    scene[:120] = np.clip(np.array([160, 190, 175]) + rng.normal(0, 3, (120, 480, 1)), 0, 255).astype(np.uint8)
    hole = np.zeros((360, 480), bool)
    hole[60:, 150:330] = True
    narrow = fill_unseen(scene, hole, "shiftmap", context=0.25)
    chosen = fill_unseen(scene, hole, "shiftmap", context=0.25, wide_context=1.0)
    assert row_texture_mismatch(narrow, hole) > 0.1  # the wall's flat colour in the table's rows
    assert row_texture_mismatch(chosen, hole) < 0.06  # as textured as the table beside it, row by row
    assert row_texture_mismatch(scene, hole) < 0.06  # (the truth scores the same)
    grey = cv2.cvtColor(chosen, cv2.COLOR_RGB2GRAY)
    table_rows = hole.copy()
    table_rows[:130] = False
    assert np.abs(grey[table_rows].astype(int) - 185).mean() > 20  # not the wall's grey
    assert np.array_equal(chosen[~hole], scene[~hole])


WALL = np.array([160, 190, 175])


def _wall_over_table(slope: float, t_count: int = 1) -> tuple[Clip, Masks, np.ndarray, np.ndarray]:
    """A still product (a tall ellipse) standing from a flat grey-green wall down into a busy table whose edge runs
    at ``slope`` through the frame (360 x 480): the clip, A's masks, the true background and the wall's pixels."""
    from pvtt.testmedia import textured_background

    scene = textured_background(360, 480, 3, detail=10.0)
    yy, xx = np.mgrid[:360, :480]
    wall = yy < 150 + slope * (xx - 240)
    flat = np.clip(WALL + np.random.default_rng(0).normal(0, 3, (360, 480, 1)), 0, 255).astype(np.uint8)
    scene[wall] = flat[wall]
    product = ((xx - 240) / 60) ** 2 + ((yy - 175) / 95) ** 2 < 1
    frames = np.repeat(scene[None], t_count, 0)
    frames[:, product] = (200, 60, 40)
    return Clip("wall", frames, 20.0), Masks(np.repeat(product[None], t_count, 0)), scene, wall


def test_a_straight_boundary_is_found_where_a_wall_meets_a_table_and_nowhere_else():
    from pvtt.testmedia import textured_background

    for slope in (0.0, 0.2, -0.3):
        _, masks, scene, _ = _wall_over_table(slope)
        line = classical.straight_boundary(scene, masks.data[0], 1.0)
        assert line is not None, slope
        assert abs(line[0] - slope) < 0.05
        assert abs(line[0] * 240 + line[1] - 150) < 4  # the edge's row under the product's middle
    hole = masks.data[0]
    assert classical.straight_boundary(textured_background(360, 480, 3, detail=10.0), hole, 1.0) is None  # a table
    assert classical.straight_boundary(scene, hole, 10.0) is None  # the gain asked for is far above the wall's
    edge = np.zeros_like(hole)
    edge[60:300, :200] = True  # reaches the frame's left edge: no band there
    assert classical.straight_boundary(scene, edge, 1.0) is None
    steep, *_ = _wall_over_table(0.6)
    assert classical.straight_boundary(steep.frames[0], hole, 1.0) is None  # steeper than BOUNDARY_MAX_SLOPE
    # a flat object just wider than the product above it (a box behind it, fingers over it) is no wall's foot: its
    # edge ends within a band's width of the product's sides
    local = textured_background(360, 480, 3, detail=10.0)
    local[:150, 150:330] = scene[:150, 150:330]
    assert classical.straight_boundary(local, hole, 1.0) is None
    local[:150] = scene[:150]
    assert classical.straight_boundary(local, hole, 1.0) is not None  # (the same edge across the frame)


@needs_xphoto
def test_each_side_of_a_wall_table_line_is_filled_from_its_own_side():
    """The product hides where a slanted table edge meets the wall, and no frame shows it: shift-map pulled the wall's
    colour down into the table beside where B goes (`pvtt demo`'s notch); filled side by side, the edge continues."""
    clip, masks, scene, wall = _wall_over_table(0.2, t_count=2)
    near_wall = np.abs(scene.astype(int) - WALL).max(-1) < 15
    yy, xx = np.mgrid[:360, :480]
    table_rows = (yy > 150 + 0.2 * (xx - 240) + 4)  # a few pixels clear of the edge
    wall_rows = (yy < 150 + 0.2 * (xx - 240) - 4)
    shares = {}
    for gain in (0.0, EraseSettings().inpaint_boundary_gain):
        erased = make_eraser(inpaint_boundary_gain=gain).erase(clip, masks)
        assert erased.info["never_visible_fraction"] > 0.9
        frame, region = erased.frames[0], erased.region[0]
        walled = np.abs(frame.astype(int) - WALL).max(-1) < 15
        shares[gain] = (float(walled[region & table_rows].mean()), float(walled[region & wall_rows].mean()))
        assert np.array_equal(frame[~region], clip.frames[0][~region])
    assert near_wall[table_rows].mean() < 0.01  # (the true table has next to no wall colour)
    off, on = shares[0.0], shares[EraseSettings().inpaint_boundary_gain]
    assert off[0] > 0.05, shares  # the notch: the wall's colour below the edge
    assert on[0] < 0.01, shares  # gone: the table continues up to the edge
    assert on[1] > 0.97, shares  # and above it, the wall


@needs_xphoto
def test_a_flat_object_beside_the_product_is_not_repeated_in_the_tables_fill(monkeypatch):
    """A flat purple tray stands on the busy table right beside the product: it touches the hole, so its colour is
    common around it (no rare colour), and shift-map repeated pieces of it in the table's fill (`pvtt demo`'s
    props); on the busy side of the wall's foot, flat objects are no source."""
    clip, masks, scene, _ = _wall_over_table(0.0, t_count=2)
    tray = np.zeros(scene.shape[:2], bool)
    tray[215:240, 300:340] = True
    frames = clip.frames.copy()
    frames[:, tray] = (90, 60, 150)
    clip = Clip("tray", frames, 20.0)
    shares = {}
    for name, flat in (("kept out", classical.flat_objects),
                       ("a source", lambda spread, sources: np.zeros_like(sources))):
        monkeypatch.setattr(classical, "flat_objects", flat)
        erased = make_eraser().erase(clip, masks)
        region = erased.region[0] & ~tray
        purple = np.abs(erased.frames[0].astype(int) - (90, 60, 150)).max(-1) < 25
        shares[name] = float(purple[region].mean())
    assert shares["a source"] > 0.02, shares  # pieces of the tray in the fill
    assert shares["kept out"] < 0.002, shares


def test_copy_offsets_finds_where_each_copied_pixel_came_from():
    """A hole filled by copying two pieces of the known texture from two offsets: every pixel's offset is found
    (seam pixels included, from their neighbours), and a pixel that is no copy gets none."""
    from pvtt.erase.classical import NO_OFFSET, copy_offsets

    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (80, 100, 3), dtype=np.uint8)
    hole = np.zeros((80, 100), bool)
    hole[30:50, 40:70] = True
    dst = src.copy()
    ys, xs = np.nonzero(hole)
    left = xs < 55
    dst[ys[left], xs[left]] = src[ys[left] - 25, xs[left]]  # the left piece from above, the right from the right
    dst[ys[~left], xs[~left]] = src[ys[~left], xs[~left] + 25]
    dst[40, 45] = (1, 2, 3)  # no copy of anything
    off = copy_offsets(src, dst, hole)
    assert (off[~hole] == NO_OFFSET).all()
    assert off[40, 45, 0] == NO_OFFSET
    found = hole.copy()
    found[40, 45] = False
    want = np.where(left[:, None], [-25, 0], [0, 25])
    got = off[ys, xs]
    keep = found[ys, xs]
    assert (got[keep] == want[keep]).all()


@needs_xphoto
def test_the_unseen_fill_keeps_the_frames_grain_at_full_resolution():
    """Filled at half the frame's size and brought back up, the shift-map fill is a blur (the frame's fine grain
    gone: `pvtt demo`'s fills showed A's shape as a soft patch); copied at full size from where shift-map copied
    each pixel, every filled pixel is one of the frame's own and the grain is as strong as the truth's."""
    from pvtt.erase.classical import fill_unseen_full
    from pvtt.testmedia import textured_background

    truth = textured_background(240, 320, 5)
    rng = np.random.default_rng(2)
    truth = np.clip(truth + rng.normal(0, 20, truth.shape), 0, 255).astype(np.uint8)  # sensor-like grain
    hole_small = np.zeros((120, 160), bool)
    hole_small[40:80, 60:100] = True
    hole = cv2.resize(hole_small.astype(np.uint8), (320, 240), interpolation=cv2.INTER_NEAREST) > 0
    holed = truth.copy()
    holed[hole] = 0
    soft = fill_unseen_full(holed, hole_small, "shiftmap", detail=False)
    sharp = fill_unseen_full(holed, hole_small, "shiftmap")
    assert _texture_ratio(soft, truth, hole) < 0.7  # 0.60
    assert 0.85 < _texture_ratio(sharp, truth, hole) < 1.3  # 1.11: as grainy as the truth (the pieces' seams add some)
    known = {tuple(p) for p in holed[~hole].reshape(-1, 3)}
    pixels = sharp[hole].reshape(-1, 3)
    assert np.mean([tuple(p) in known for p in pixels]) > 0.9  # 0.92; the rest, sources not found, upsampled
    assert np.array_equal(sharp[~hole], soft[~hole])


def _corner_shift(chain: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """How far (px) each map of ``chain`` moves the frame's corners, at most, per frame."""
    w, h = size
    corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32).reshape(-1, 1, 2)
    return np.array([np.abs(cv2.perspectiveTransform(corners, m).reshape(-1, 2) - corners.reshape(-1, 2)).max()
                     for m in chain])


def test_background_motion_stays_still_when_only_a_hand_moves():
    """A still camera on a plain studio backdrop, a textured hand crossing it: the only features are the hand's, and a
    homography fitted to them followed the hand (ART001-s00's chain ran out by thousands of pixels, every borrowed
    frame warped to a sheared piece of backdrop). Each step is now checked against the frames themselves: no motion
    matches the backdrop best."""
    from pvtt.erase.classical import background_motion

    h, w, t_count = 120, 160, 24
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    rng = np.random.default_rng(3)
    backdrop = 200 + 20 * yy / h + rng.normal(0, 1.0, (h, w))
    hand = cv2.GaussianBlur(rng.integers(90, 200, (40, 40)).astype(np.float32), (0, 0), 1.2)
    grey = []
    for t in range(t_count):
        frame = backdrop.copy()
        x0 = 10 + 4 * t  # 4 px a frame, left to right
        frame[50:90, x0:x0 + 40] = hand[:, : min(40, w - x0)]
        grey.append(np.clip(frame, 0, 255).astype(np.uint8))
    chain, _ = background_motion(grey, np.zeros((t_count, h, w), bool))
    assert _corner_shift(chain, (w, h)).max() < 1.0


def test_background_motion_follows_a_slow_pan():
    """A camera panning a third of a pixel a frame over grainy cloth: frame to frame that is below the noise, so no
    motion matches nearly as well as the features' fit, yet it adds up to 8 px over the clip — the fit is kept."""
    from pvtt.erase.classical import background_motion

    h, w, t_count = 120, 160, 25
    rng = np.random.default_rng(4)
    cloth = cv2.GaussianBlur(rng.integers(0, 256, (h + 20, w + 40)).astype(np.float32), (0, 0), 1.5)
    cloth = 128 + (cloth - cloth.mean()) * 4
    grey = []
    for t in range(t_count):
        shift = np.float32([[1, 0, -(10 + t / 3)], [0, 1, -10]])  # the view moves right: content moves left
        frame = cv2.warpAffine(cloth, shift, (w, h), flags=cv2.INTER_LINEAR)
        grey.append(np.clip(frame + rng.normal(0, 3, (h, w)), 0, 255).astype(np.uint8))
    chain, _ = background_motion(grey, np.zeros((t_count, h, w), bool))
    moved = chain[-1] @ np.array([80.0, 60.0, 1.0])  # where frame 24's centre lies in frame 0
    assert abs(moved[0] / moved[2] - (80 + 24 / 3)) < 1.0 and abs(moved[1] / moved[2] - 60) < 1.0


def _satin_with_petals(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lavender satin (soft folds, grain) with white petals scattered away from a hole in the middle: the image,
    the hole and the petals."""
    rng = np.random.default_rng(seed)
    h, w = 240, 320
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    fold = 12 * np.sin(xx / 23 + yy / 41)
    satin = np.stack([190 + fold, 170 + fold, 215 + fold], -1) + rng.normal(0, 2, (h, w, 1))
    image = np.clip(satin, 0, 255).astype(np.uint8)
    hole = ((xx - 160) / 60) ** 2 + ((yy - 120) / 45) ** 2 < 1
    petals = np.zeros((h, w), np.uint8)
    for cx, cy in ((30, 30), (290, 40), (40, 210), (280, 200), (160, 20)):
        cv2.ellipse(petals, (cx, cy), (9, 6), 30, 0, 360, 1, -1)
    image[petals > 0] = (248, 246, 244)
    return image, hole, petals > 0


def test_colours_rare_around_the_hole_are_found_and_a_busy_texture_is_not():
    """The petals, white where the ring around the hole is all satin, are rare; the satin is not. On a texture of
    many colours, as frequent around the hole as elsewhere, nothing is."""
    image, hole, petals = _satin_with_petals()
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2Lab)
    rare = classical.rare_colours(lab, hole, 0.05)
    assert rare[petals].all()  # every petal (grown by 2 px)
    assert rare.sum() < 2 * cv2.dilate(petals.astype(np.uint8), np.ones((5, 5), np.uint8)).sum()  # no satin
    assert not (rare & hole).any()
    busy = np.random.default_rng(1).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    busy = cv2.resize(busy, (320, 240), interpolation=cv2.INTER_NEAREST)  # 4x4 blocks of any colour
    busy_rare = classical.rare_colours(cv2.cvtColor(busy, cv2.COLOR_RGB2Lab), hole, 0.05)
    assert busy_rare.mean() < 0.02


@needs_xphoto
def test_the_unseen_fill_repeats_no_object_from_beside_the_hole():
    """Shift-map with ``rare_ratio`` fills the satin hole from satin only: no petal-white pixel inside the hole,
    and the fill keeps the satin's grain (not a smear)."""
    image, hole, _ = _satin_with_petals()
    holed = image.copy()
    holed[hole] = 0
    filled = fill_unseen(holed, hole, "shiftmap", context=1.0, rare_ratio=0.05)
    white = filled.min(axis=2) > 235
    assert not white[hole].any()
    assert np.array_equal(filled[~hole], holed[~hole])
    grey = cv2.cvtColor(filled, cv2.COLOR_RGB2GRAY).astype(np.float32)
    texture = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
    assert texture[hole].mean() > 0.5 * texture[~hole & ~white].mean()
