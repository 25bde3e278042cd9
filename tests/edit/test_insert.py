"""Insert: B's slot keeps A's area and B's aspect ratio; slots that cannot hold B reject the pair."""

from __future__ import annotations

import numpy as np
import pytest

from pvtt.compose import box_of_mask
from pvtt.errors import RejectItem
from pvtt.insert import make_inserter


def _scene(mask_box: tuple[int, int, int, int], size: tuple[int, int] = (160, 200)) -> tuple[np.ndarray, np.ndarray]:
    frame = np.full(size + (3,), 180, np.uint8)
    mask = np.zeros(size, bool)
    x0, y0, x1, y1 = mask_box
    mask[y0:y1, x0:x1] = True
    frame[mask] = 60
    return frame, mask


def _product(h: int, w: int) -> np.ndarray:
    rgba = np.zeros((h, w, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = (200, 40, 40), 255
    return rgba


def test_b_takes_a_area_with_its_own_aspect_anchored_bottom_centre():
    frame, mask = _scene((80, 60, 120, 120))  # A: 40 x 60
    result = make_inserter(cover_growth=1.0).insert(frame, frame, mask, box_of_mask(mask), _product(30, 60))  # 2:1
    box = result.box
    assert box.width / box.height == pytest.approx(2.0, rel=0.05)
    assert box.area == pytest.approx(40 * 60, rel=0.05)
    assert box.y1 == pytest.approx(120, abs=0.5) and box.center[0] == pytest.approx(100, abs=0.5)
    assert result.alpha.shape == mask.shape and result.alpha.max() <= 1.0
    assert (result.alpha > 0.5).sum() == pytest.approx(40 * 60, rel=0.1)


def test_b_grows_to_hide_more_of_a_where_the_silhouettes_differ():
    """A tall A and a wide B: the area match leaves A's top showing (erase fill); B grows within cover_growth."""
    frame, mask = _scene((80, 60, 120, 120))  # A: 40 x 60
    matched = make_inserter(cover_growth=1.0).insert(frame, frame, mask, box_of_mask(mask), _product(30, 60))
    grown = make_inserter(cover_growth=1.3).insert(frame, frame, mask, box_of_mask(mask), _product(30, 60))
    assert grown.info["uncovered"] < matched.info["uncovered"] - 0.1
    assert grown.box.width / matched.box.width == pytest.approx(1.3, abs=0.03)
    assert grown.box.y1 == pytest.approx(120, abs=0.5)
    # a B that already covers A does not grow
    fits = make_inserter(cover_growth=1.3).insert(frame, frame, mask, box_of_mask(mask), _product(60, 40))
    assert fits.info["scale"] == pytest.approx(1.0, rel=0.02)


def test_a_slot_at_the_frame_edge_that_cannot_hold_b_is_rejected():
    frame, mask = _scene((0, 100, 30, 160))  # A tall and thin in the bottom-left corner
    with pytest.raises(RejectItem, match=r"product would leave the frame: \d+% of B's box .* \(limit 15%\)"):
        make_inserter(anchor="center").insert(frame, frame, mask, box_of_mask(mask), _product(20, 60))


def test_the_contact_shadow_does_not_show_through_the_products_holes():
    """Two rings lying side by side: their contact shadow darkens the floor below them, not the floor seen through
    their holes (the bench's case005 showed a grey band there); a solid product's shadow is the same either way."""
    import cv2

    from pvtt.compose import render_product
    from pvtt.insert.composite import contact_shadow

    rings = np.zeros((60, 140, 4), np.uint8)
    for cx in (35, 105):
        cv2.circle(rings, (cx, 30), 28, (90, 90, 90, 255), 4)
    shadow, to_product = contact_shadow(rings, 0.35)
    floor = np.full((200, 300, 3), 230, np.uint8)
    place = np.array([[1.0, 0, 80], [0, 1, 100], [0, 0, 1]])
    out, _ = render_product(floor, rings, place, shadow, place @ to_product)
    inside = out[100 + 50:100 + 56, 80 + 30:80 + 40]  # the floor through the left ring, just above its base
    below = out[100 + 62:100 + 66, 80 + 30:80 + 40]  # the floor just under the base
    assert inside.min() >= 228 and below.mean() < 222, (inside.min(), below.mean())
    # below the base line the shadow is the one a solid product of the same outline casts
    from scipy.ndimage import binary_fill_holes

    solid = rings.copy()
    solid[..., 3] = binary_fill_holes(rings[..., 3] > 127) * 255
    full, _ = contact_shadow(solid, 0.35)
    base_row = full.shape[0] // 2  # the map is centred on the base line
    assert np.allclose(shadow[base_row + 1:], full[base_row + 1:]) and shadow.sum() < full.sum()


def test_each_part_standing_on_the_floor_casts_its_own_contact_shadow():
    """Two vases, one behind the other (ART001's photo): the rear one's base is higher in the picture, and with one
    shadow under the lowest base it floated. A lid lifted above its box rests on the box: no shadow under it."""
    from pvtt.compose import render_product
    from pvtt.insert.composite import contact_shadow

    vases = np.zeros((120, 160, 4), np.uint8)
    vases[20:119, 10:70] = (200, 200, 200, 255)  # front vase, its base on row 118
    vases[0:90, 95:150] = (200, 200, 200, 255)  # rear vase, its base on row 89
    floor = np.full((300, 400, 3), 230, np.uint8)
    place = np.array([[1.0, 0, 100], [0, 1, 100], [0, 0, 1]])
    shadow, to_product = contact_shadow(vases, 0.35)
    out, _ = render_product(floor, vases, place, shadow, place @ to_product)
    under_rear = out[100 + 91:100 + 95, 100 + 110:100 + 135]
    under_front = out[100 + 120:100 + 124, 100 + 25:100 + 55]
    assert under_rear.mean() < 222 and under_front.mean() < 222, (under_rear.mean(), under_front.mean())

    box = np.zeros((120, 160, 4), np.uint8)
    box[60:119, 20:140] = (150, 90, 40, 255)
    box[10:45, 20:140] = (150, 90, 40, 255)  # the lid, lifted: the floor shows between it and the box
    shadow, to_product = contact_shadow(box, 0.35)
    out, _ = render_product(floor, box, place, shadow, place @ to_product)
    gap = out[100 + 47:100 + 58, 100 + 40:100 + 120]
    assert gap.min() >= 229, gap.min()
    assert out[100 + 120:100 + 124, 100 + 40:100 + 120].mean() < 222

    # a speck hanging below the box (a tag on a string) is no part, and does not lift the box off the floor
    from pvtt.insert.composite import standing_parts

    tagged = np.zeros((120, 160), bool)
    tagged[20:90, 20:140] = True
    tagged[100:103, 75:78] = True
    assert standing_parts(tagged) == [(20, 140, 90, 70)]


def test_b_cut_by_a_frame_edge_that_a_stays_clear_of_is_rejected():
    """A's box stays clear of the frame's top: a tall B anchored at A's base that runs past the top is rejected
    (pvtt demo's bottle lost its neck there); where A itself reaches the edge, B may leave the frame with it."""
    from pvtt.compose import slot_misfit
    from pvtt.insert import InsertSettings
    from pvtt.types import Box

    s = InsertSettings()
    clear = Box(100, 40, 160, 100)  # 60 px tall, 40 px below the top
    assert slot_misfit(clear, 40, 80, 320, 240, s) is None  # B's box reaches y = 20: inside
    reason = slot_misfit(clear, 40, 110, 320, 240, s)  # y = -10: 9 % of B's box past the top
    assert reason is not None and "cut by the frame" in reason
    at_top = Box(100, 1, 160, 100)  # A reaches the top edge itself
    assert slot_misfit(at_top, 40, 110, 320, 240, s) is None
