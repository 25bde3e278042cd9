"""The judge's defect checks on generated cases with one known defect each (pvtt.judge.defects).

The clean edit of the generated case passes every check; each test then plants one defect a reviewer
would reject — a part of A left in the edited clip, a flat fill where A was, B lifted off A's support —
and asserts the judge rejects the pair naming that defect.
"""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.judge import JudgeSettings, judge
from pvtt.cutout import foreign_content
from pvtt.judge.defects import floating
from pvtt.types import Masks

DEFECTS = ("remnant of A", "erase smear", "floating", "product too small", "product too large")


def _named(result, name: str) -> bool:
    return any(r.startswith(name) for r in result.reasons)


def _judge(case, frames, masks_a, masks_b, cut, background, **settings):
    return judge(case.clip.frames, frames, masks_a, masks_b, cut.rgba, case.tracks_a, JudgeSettings(**settings),
                 background=background)


def test_the_clean_edit_shows_no_defect(case, edited):
    """B as propagated, over the true background (an erase that recovered the backdrop exactly)."""
    cut, _, _, result = edited
    frames = np.where(result.masks[..., None], result.frames, case.background).astype(np.uint8)
    verdict = _judge(case, frames, case.masks_a, result.masks, cut, case.background)
    assert not any(_named(verdict, d) for d in DEFECTS), verdict.reasons
    # the busy synthetic backdrop lends the extent a few blobs of its own, under the threshold (0.083-0.093 across
    # encodings of the case; the threshold is 0.15)
    assert verdict.scores["remnant"] < 0.75 * JudgeSettings().max_remnant
    assert "floating" in verdict.scores


@pytest.mark.xfail(strict=True, reason="a known miss: encoded with the integer YUV and 3 encoder threads (every machine "
                   "now encodes the case alike), the fill still shows pieces of the cyan disc and the handle's ghost "
                   "beside B (looked at), but its straight-edge share is 1.29 of the frame's around it, under "
                   "judge.max_fill_seams 1.5, and its texture 1.05: the judge keeps the pair. Under the old, "
                   "machine-dependent encoding it scored above 1.5 on some machines and not on others.")
def test_the_cpu_erase_of_the_generated_case_shows_its_blocks(case, edited):
    """The default CPU eraser never sees the backdrop behind the mug and fills it from patches: pieces of the
    cyan disc with straight seams and streaks of the handle's shade, visible where the bottle does not cover
    (looked at, frame by frame). The judge names it."""
    cut, erased, _, result = edited
    verdict = _judge(case, result.frames, case.masks_a, result.masks, cut, erased.frames)
    assert any(r.startswith("erase smear") and "blocks" in r for r in verdict.reasons), verdict.reasons
    assert not any(_named(verdict, d) for d in DEFECTS if d != "erase smear"), verdict.reasons


def test_a_part_of_a_the_mask_missed_is_a_remnant(case, edited):
    """Segmentation missed a side of A: erase and insert never touched it, so it stays beside B."""
    cut, erased, _, result = edited
    masks = case.masks_a.data
    frames, background = result.frames.copy(), erased.frames.copy()
    # the part of A that B does not cover, on the side away from B's centre (where a handle would be)
    missed = np.zeros_like(masks)
    for t in range(len(masks)):
        xs = np.flatnonzero(result.masks[t].any(axis=0))
        mid = int(xs.mean())
        side = slice(mid, None) if (masks[t][:, mid:].sum() > masks[t][:, :mid].sum()) else slice(None, mid)
        missed[t][:, side] = masks[t][:, side] & ~result.masks[t][:, side]
    # the missed half is the source's, in the background and in the edit, except where B covers it
    background[missed] = case.clip.frames[missed]
    keep = missed & ~result.masks
    frames[keep] = case.clip.frames[keep]
    seen = Masks(masks & ~missed)
    verdict = _judge(case, frames, seen, result.masks, cut, background)
    assert _named(verdict, "remnant of A"), (verdict.scores, verdict.reasons)
    clean = _judge(case, np.where(missed[..., None] & ~result.masks[..., None], case.background, frames), seen,
                   result.masks, cut, np.where(missed[..., None], case.background, background))
    assert not _named(clean, "remnant of A"), (clean.scores, clean.reasons)


def test_a_generator_that_redraws_a_leaves_a_remnant(case, edited):
    """Inside A's mask the edit kept the source (A) where the erased background shows something else."""
    cut, erased, _, result = edited
    frames = result.frames.copy()
    keep = case.masks_a.data & ~result.masks
    frames[keep] = case.clip.frames[keep]
    verdict = _judge(case, frames, case.masks_a, result.masks, cut, erased.frames)
    assert _named(verdict, "remnant of A"), (verdict.scores, verdict.reasons)


def _speck(masks_a: np.ndarray) -> np.ndarray:
    """B shrunk to a 10x10 speck just above A's bottom, at its centre column: most of the fill shows around it."""
    small_b = np.zeros_like(masks_a)
    for t in range(len(masks_a)):
        ys, xs = np.nonzero(masks_a[t])
        cy, cx = int(ys.max()) - 6, int(xs.mean())
        small_b[t, cy - 5:cy + 5, cx - 5:cx + 5] = True
    return small_b


def test_a_flat_fill_is_an_erase_smear(case, edited):
    """The visible part of the erased region is a flat colour where the real background has texture."""
    cut = edited[0]
    from pvtt.compose import dilate

    small_b = _speck(case.masks_a.data)
    frames = case.background.copy()
    smeared = case.background.copy()
    for t in range(len(frames)):
        region = dilate(case.masks_a.data[t], 6)
        smeared[t][region] = case.background[t][region].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    frames_smeared = np.where(small_b[..., None], 200, smeared).astype(np.uint8)
    frames_true = np.where(small_b[..., None], 200, frames).astype(np.uint8)
    bad = _judge(case, frames_smeared, case.masks_a, small_b, cut, smeared)
    assert _named(bad, "erase smear"), (bad.scores, bad.reasons)
    good = _judge(case, frames_true, case.masks_a, small_b, cut, case.background)
    assert not _named(good, "erase smear"), (good.scores, good.reasons)
    assert good.scores["fill_texture"] > 2 * bad.scores["fill_texture"]


def test_a_fill_that_copied_a_glitch_is_an_erase_smear(case, edited):
    """The visible fill is far busier than the frame around it (a source's stripe glitch copied into it)."""
    cut = edited[0]
    from pvtt.compose import dilate

    small_b = _speck(case.masks_a.data)
    glitched = case.background.copy()
    stripes = np.where((np.arange(glitched.shape[1]) // 2) % 2 == 0, 0, 255).astype(np.uint8)  # 2-px horizontal bars
    for t in range(len(glitched)):
        region = dilate(case.masks_a.data[t], 6)
        glitched[t][region] = np.broadcast_to(stripes[:, None, None], glitched[t].shape)[region]
    frames = np.where(small_b[..., None], 200, glitched).astype(np.uint8)
    bad = _judge(case, frames, case.masks_a, small_b, cut, glitched)
    assert _named(bad, "erase smear") and bad.scores["fill_texture"] > JudgeSettings().max_fill_texture, \
        (bad.scores, bad.reasons)


def test_a_fill_of_blocks_is_an_erase_smear(case, edited):
    """A patch fill that failed: the visible fill is a mosaic of 12-px blocks copied from elsewhere in the frame,
    each off in brightness, with straight seams between them (ELEC003's pink blocks where the hand held A)."""
    cut = edited[0]
    from pvtt.compose import dilate

    rng = np.random.default_rng(3)
    small_b = _speck(case.masks_a.data)
    blocky = case.background.copy()
    h, w = blocky.shape[1:3]
    for t in range(len(blocky)):
        region = dilate(case.masks_a.data[t], 6)
        ys, xs = np.nonzero(region)
        mosaic = blocky[t].copy()
        for y in range(ys.min() - ys.min() % 12, ys.max() + 1, 12):
            for x in range(xs.min() - xs.min() % 12, xs.max() + 1, 12):
                sy, sx = rng.integers(0, h - 12), rng.integers(0, w - 12)
                shift = int(rng.integers(-40, 41))
                mosaic[y:y + 12, x:x + 12] = np.clip(case.background[t, sy:sy + 12, sx:sx + 12].astype(int) + shift,
                                                     0, 255)[:min(12, h - y), :min(12, w - x)]
        blocky[t][region] = mosaic[region]
    frames = np.where(small_b[..., None], 200, blocky).astype(np.uint8)
    bad = _judge(case, frames, case.masks_a, small_b, cut, blocky)
    assert _named(bad, "erase smear") and bad.scores["fill_seams"] > JudgeSettings().max_fill_seams, \
        (bad.scores, bad.reasons)
    good = _judge(case, np.where(small_b[..., None], 200, case.background).astype(np.uint8), case.masks_a, small_b,
                  cut, case.background)
    assert not _named(good, "erase smear") and good.scores["fill_seams"] < JudgeSettings().max_fill_seams, \
        (good.scores, good.reasons)
    # off, the same blocks pass
    assert not _named(_judge(case, frames, case.masks_a, small_b, cut, blocky, max_fill_seams=0), "erase smear")


def test_b_lifted_off_a_support_is_floating(case, edited):
    cut, erased, _, result = edited
    masks_b = result.masks
    ys = np.flatnonzero(case.masks_a.data[0].any(axis=1))
    lift = max(4, (ys[-1] - ys[0]) // 4)
    lifted_masks = np.roll(masks_b, -lift, axis=1)
    lifted_masks[:, -lift:] = False  # what rolled over the top edge
    lifted = np.where(lifted_masks[..., None], np.roll(result.frames, -lift, axis=1), erased.frames)
    verdict = _judge(case, lifted, case.masks_a, lifted_masks, cut, erased.frames)
    assert _named(verdict, "floating"), (verdict.scores, verdict.reasons)
    assert verdict.scores["floating"] > 0.15


def test_b_shrunk_to_a_speck_is_too_small(case, edited):
    """B inserted into the slot of a tiny part of A (a watch's hands): a speck no reviewer recognises."""
    cut, erased, _, result = edited
    speck = np.zeros_like(result.masks)
    speck[:, 40:46, 60:66] = True  # 36 px of a frame of thousands
    frames = np.where(speck[..., None], 200, erased.frames).astype(np.uint8)
    verdict = _judge(case, frames, case.masks_a, speck, cut, erased.frames)
    assert _named(verdict, "product too small"), (verdict.scores, verdict.reasons)
    assert verdict.scores["product_area"] < JudgeSettings().min_product_area
    off = _judge(case, frames, case.masks_a, speck, cut, erased.frames, min_product_area=0.0, max_product_area=1.0)
    assert not _named(off, "product too small") and "product_area" not in off.scores


def test_b_filling_the_frame_is_too_large(case, edited):
    """B in the slot of a mask that took in the backdrop (pvtt demo's busy band): B covers most of the frame."""
    cut, erased, _, result = edited
    huge = np.zeros_like(result.masks)
    height, width = huge.shape[1:]
    huge[:, height // 8:, : width * 7 // 8] = True  # 0.77 of the frame
    frames = np.where(huge[..., None], 200, erased.frames).astype(np.uint8)
    verdict = _judge(case, frames, case.masks_a, huge, cut, erased.frames)
    assert _named(verdict, "product too large"), (verdict.scores, verdict.reasons)
    assert verdict.scores["product_area"] > JudgeSettings().max_product_area
    off = _judge(case, frames, case.masks_a, huge, cut, erased.frames, max_product_area=1.0)
    assert not _named(off, "product too large")

def test_floating_is_not_judged_where_a_runs_out_of_the_frame():
    a = np.zeros((100, 100), bool)
    a[60:100, 40:60] = True  # A's base is the frame's bottom edge: its support is not seen
    b = np.zeros_like(a)
    b[30:70, 40:60] = True
    assert floating(a, b, JudgeSettings()) is None
    a2 = np.zeros_like(a)
    a2[40:80, 40:60] = True
    assert floating(a2, b, JudgeSettings()) == pytest.approx(10 / 40)


def test_foreign_content_measures_a_support_surface_and_hands():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[10:80, 40:60, 3] = 255  # the product
    clean = foreign_content(rgba)
    rgba[85:100, :, 3] = 255  # a shelf edge across the whole cutout
    shelf = foreign_content(rgba)
    assert clean["support"] == pytest.approx(1.0) and shelf["support"] > 3
    assert clean["pieces"] == 1 and "hand" not in clean
    hand = np.zeros((100, 100), bool)
    hand[10:30, 40:60] = True
    assert foreign_content(rgba, hand)["hand"] == pytest.approx(400 / rgba[..., 3].astype(bool).sum())


def test_a_product_spanning_the_frame_leaves_no_backdrop_to_find_its_missed_parts():
    """Two thin cords across a smooth backdrop (JEW002-s01): the zone around their hull leaves 7 % of its size as
    backdrop; GrabCut learns the backdrop from that sliver and takes most of the backdrop for A (here 7.8 times the
    cords' area, where JEW002-s01 scored a remnant of 7.5 on clean edits). With too little backdrop the extent is the
    mask alone; with enough (a small product in the frame) the cut runs as before."""
    import cv2

    from pvtt.judge.defects import a_extent

    rng = np.random.default_rng(0)
    h, w = 180, 240
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    backdrop = np.stack([170 + 20 * np.sin(xx / 30 + yy / 50), 150 + 15 * np.sin(yy / 25), 200 + 0 * xx], -1)
    frame = np.clip(backdrop + rng.normal(0, 3, (h, w, 3)), 0, 255).astype(np.uint8)
    cords = np.zeros((h, w), np.uint8)
    cv2.line(cords, (8, 30), (232, 40), 1, 6)
    cv2.line(cords, (8, 140), (232, 150), 1, 6)
    frame[cords > 0] = (40, 40, 45)
    mask = cords > 0
    free = a_extent(frame, mask, 0.1, min_backdrop=0.0)
    assert (free & ~mask).sum() > 3 * mask.sum()  # the unguarded cut takes the backdrop for A
    assert np.array_equal(a_extent(frame, mask, 0.1, min_backdrop=0.1), mask)
    small = np.zeros((h, w), bool)
    small[80:100, 100:130] = True  # a product well inside the frame: the rule leaves its cut alone
    assert np.array_equal(a_extent(frame, small, 0.3, 0.1), a_extent(frame, small, 0.3, 0.0))


def test_floating_is_not_judged_where_a_has_no_base():
    """A cord lying diagonally across a surface has no base to stand on: its low end is a sliver of its width, and B
    placed over the cord need not reach down to it. A ball's or a box's lowest tenth spans much of its width."""
    import cv2

    cord = np.zeros((200, 200), np.uint8)
    cv2.line(cord, (20, 40), (180, 170), 1, 6)  # diagonal, ending well above the frame's bottom
    b = np.zeros((200, 200), bool)
    b[60:120, 70:130] = True  # B over the cord's middle, its bottom 50 px above the cord's low end
    assert floating(cord.astype(bool), b, JudgeSettings(floating_min_base=0.0)) > 0.3  # judged, it would fire
    assert floating(cord.astype(bool), b, JudgeSettings()) is None
    ball = np.zeros((200, 200), np.uint8)
    cv2.circle(ball, (100, 100), 50, 1, -1)
    assert floating(ball.astype(bool), b, JudgeSettings()) == pytest.approx((150 - 119) / 101)
    box = np.zeros((200, 200), bool)
    box[80:150, 60:140] = True
    assert floating(box, b, JudgeSettings()) == pytest.approx(30 / 70)


def _texture(rng, h, w):
    import cv2

    small = rng.integers(0, 256, (h // 4, w // 4, 3), dtype=np.uint8)
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)


def test_beside_a_only_what_moves_with_a_counts_as_a():
    """A (a textured block) slides 6 px right between two frames over a still scene. Of two pieces beside A's mask,
    the one riding along with A (a part of A the mask missed) is A's; the scene beside it is not. Where A stands
    still too, motion cannot tell them apart and both stay."""
    from pvtt.judge.defects import moves_with_a

    rng = np.random.default_rng(0)
    h, w = 128, 192
    scene, product = _texture(rng, h, w), _texture(rng, 48, 72)

    def frame(x0):
        out = scene.copy()
        out[40:88, x0:x0 + 72] = product
        return out

    f0, f1 = frame(60), frame(66)
    mask_a = np.zeros((h, w), bool)
    mask_a[40:88, 60:110] = True  # the mask misses A's right end (x 110-131)
    rides = np.zeros((h, w), bool)
    rides[44:84, 112:128] = True  # on A's missed end
    scene_piece = np.zeros((h, w), bool)
    scene_piece[44:84, 36:56] = True  # the scene left of A
    moved = np.float64([[1, 0, 6], [0, 1, 0]])
    kept = moves_with_a(f0, f1, mask_a, rides | scene_piece, moved, 2.0)
    assert kept[rides].all() and not kept[scene_piece].any()
    still = moves_with_a(f0, frame(60), mask_a, rides | scene_piece, np.float64([[1, 0, 0], [0, 1, 0]]), 2.0)
    assert still[rides].all() and still[scene_piece].all()


def test_an_occluder_beside_a_is_not_a_remnant(occluded_case):
    """A skin-toned ellipse sweeps across A's path, in front of it: the edit keeps it (it is in front of B too).
    The colour cut beside A's mask may take it for A; it moves on its own path, not A's, so it is not A left
    behind."""
    case = occluded_case
    frames = np.where(case.masks_b[..., None], case.video_b, case.clip.frames)
    edited = np.where((case.masks_a.data & ~case.masks_b)[..., None], case.background, frames).astype(np.uint8)
    def verdict(**settings):
        return judge(case.clip.frames, edited, case.masks_a, case.masks_b, case.product_b, case.tracks_a,
                     JudgeSettings(**settings), background=case.background)

    moving = verdict(remnant_motion_step=4)
    assert not _named(moving, "remnant of A"), moving.scores
    # without the motion test the colour cut's take of the ellipse is counted as A (0.39 of A's area)
    assert _named(verdict(remnant_motion_step=0), "remnant of A")


def test_a_flat_strip_beside_b_is_an_erase_smear(case, edited):
    """B covers most of A's place; in the gap beside it a strip of the fill is one flat colour (DEMO003-s01's wall
    colour pulled down into its textured table), the rest of the fill textured: the median texture passes — the
    flat piece is named, also with the blocks check off (the strip's straight sides are seams too)."""
    cut, _, _, result = edited
    from pvtt.compose import dilate

    masks_a, masks_b = case.masks_a.data, result.masks
    strip_bg = case.background.copy()
    for t in range(len(strip_bg)):
        ys, xs = np.nonzero(masks_a[t])
        side = dilate(masks_a[t], 6) & ~dilate(masks_b[t], 3)
        side[:, int(xs.mean()):] = False  # the gap left of B
        sixth = (ys.max() - ys.min()) // 6
        side[:ys.min() + sixth], side[ys.max() - sixth:] = False, False  # its middle two thirds
        strip_bg[t][side] = (120, 160, 190)  # a pale flat colour, unlike the busy backdrop
    frames = np.where(masks_b[..., None], result.frames, strip_bg).astype(np.uint8)
    for checks in ({}, {"max_fill_seams": 0}):
        bad = _judge(case, frames, case.masks_a, masks_b, cut, strip_bg, **checks)
        assert _named(bad, "erase smear"), (bad.scores, bad.reasons)
        assert bad.scores["fill_flat"] > JudgeSettings().max_fill_flat
        assert bad.scores["fill_texture"] > JudgeSettings().min_fill_texture  # the median does not see it
    assert "flat piece" in " ".join(bad.reasons), bad.reasons
    good_frames = np.where(masks_b[..., None], result.frames, case.background).astype(np.uint8)
    good = _judge(case, good_frames, case.masks_a, masks_b, cut, case.background)
    assert not _named(good, "erase smear") and good.scores["fill_flat"] < JudgeSettings().max_fill_flat, \
        (good.scores, good.reasons)
    # both off, the strip passes
    assert not _named(_judge(case, frames, case.masks_a, masks_b, cut, strip_bg, max_fill_seams=0, max_fill_flat=1),
                      "erase smear")


def test_blocks_are_judged_only_where_the_fill_has_edges_in_most_frames():
    """A smooth fill has too few strong edges to measure its seams; blocks in two frames of eight (a hand passing) do
    not make the clip's fill a mosaic — the median of two frames' seams is no measure of the clip —, the same blocks
    in every frame do."""
    from pvtt.judge.defects import defect_checks

    t_count, h, w = 8, 96, 128
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:h, :w]
    stripes = 120 + 40 * np.sign(np.sin((xx + yy) / 3.0))  # the frame around: strong diagonal edges
    frame = np.repeat(stripes[..., None], 3, -1).astype(np.uint8)
    a = np.zeros((h, w), bool)
    a[28:68, 40:88] = True
    src = np.repeat(frame[None], t_count, 0)
    src[:, a] = 30  # A, dark
    smooth = src.copy()
    smooth[:, a] = 120  # the erase's smooth fill: no strong edge inside
    blocky = smooth.copy()
    for t in range(t_count):
        for y in range(28, 68, 8):
            for x in range(40, 88, 8):
                blocky[t, y:y + 8, x:x + 8] = 120 + int(rng.integers(-30, 31))
    two = smooth.copy()
    two[[2, 5]] = blocky[[2, 5]]
    idx = list(range(t_count))
    masks = {t: a for t in idx}
    empty = {t: np.zeros((h, w), bool) for t in idx}
    settings = JudgeSettings(min_fill_texture=0.01, max_fill_texture=100)  # the texture checks out of the way

    def seams(fill):
        frames = {t: fill[t] for t in idx}
        scores, reasons = defect_checks({t: src[t] for t in idx}, frames, frames, masks, empty, idx, settings)
        return scores.get("fill_seams"), any("blocks" in r for r in reasons)

    value, named = seams(blocky)
    assert named and value > settings.max_fill_seams, value
    assert seams(two) == (None, False)  # two frames of eight measured: not enough
    assert seams(smooth) == (None, False)


def test_a_extent_is_found_once_per_frame_and_mask(monkeypatch):
    """A's extent depends on the source frame and A's mask, not on B: the pairs of one clip ask for the same frames,
    and the GrabCut runs once (the second pair gets a copy of the first's extent)."""
    import cv2

    from pvtt.judge import defects

    rng = np.random.default_rng(3)
    frame = np.clip(rng.normal(200, 5, (120, 160, 3)), 0, 255).astype(np.uint8)
    frame[40:80, 50:110] = (150, 60, 40)
    mask = np.zeros((120, 160), bool)
    mask[42:78, 52:90] = True  # the mask missed the product's right part
    calls = []
    real = cv2.grabCut
    monkeypatch.setattr(cv2, "grabCut", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    monkeypatch.setattr(defects, "_extents", type(defects._extents)())
    first = defects.a_extent(frame, mask, 0.3)
    first[:] = False  # the caller's copy: the remembered extent is not touched
    second = defects.a_extent(frame, mask, 0.3)
    assert len(calls) == 1 and second[60, 100] and np.array_equal(second, defects.find_a_extent(frame, mask, 0.3))
    other = mask.copy()
    other[42:78, 52:60] = False
    defects.a_extent(frame, other, 0.3)  # another mask: cut again
    defects.a_extent(frame, mask, 0.4)  # another reach: cut again
    assert len(calls) == 4  # (find_a_extent above cut once more)
