"""curate's grip check (``curate.min_grip_on_mask``): the hands of a showcase hold the product, so hands that keep
gripping something the product mask does not hold mean the mask lies beside the product. Drawn landmarks with a known
answer here; MediaPipe on real dev frames in tests/hands/test_hands.py."""

from __future__ import annotations

import numpy as np

from pvtt.curate import CurateSettings, curate
from pvtt.curate.metrics import grip_cover
from pvtt.hands import HandDetector, grip_points, hand_size
from pvtt.types import Clip, Masks, Tracks


def _hand(at: tuple[float, float], closed: bool) -> np.ndarray:
    """21 landmarks of a hand whose palm is 100 px long, wrist below; with ``closed`` the thumb tip touches the index
    and middle fingertips at ``at``, else the fingers are spread 150 px from the thumb."""
    x, y = at
    xy = np.zeros((21, 2))
    xy[0] = (x, y + 160)  # wrist
    xy[5], xy[9], xy[13], xy[17] = (x - 30, y + 60), (x, y + 60), (x + 20, y + 62), (x + 40, y + 65)
    xy[1:5] = [(x - 40, y + 120), (x - 45, y + 90), (x - 30, y + 30), (x - 10, y)]  # thumb, tip at (x-10, y)
    spread = 0 if closed else 150
    for tip, dx in ((8, 10), (12, 20), (16, 30), (20, 40)):
        xy[tip - 2:tip + 1] = [(x - 20 + dx, y + 40), (x - 10 + dx, y + 20), (x - 10 + dx + spread, y - spread)]
    return xy


def test_a_closed_hand_grips_between_thumb_and_fingertips_an_open_one_holds_nothing():
    closed, open_ = _hand((100, 100), True), _hand((100, 100), False)
    assert hand_size(closed) == 100
    points = grip_points(closed)
    # thumb tip (90, 100), index and middle tips (100, 100) and (110, 100)
    assert points.shape == (2, 2) and np.allclose(points, [(95, 100), (100, 100)])
    assert grip_points(open_).shape == (0, 2)


def test_a_grip_counts_on_the_mask_it_touches_and_not_beside_it():
    mask = np.zeros((300, 400), bool)
    mask[80:200, 60:160] = True  # the product the hand holds at (95..100, 100)
    beside = np.zeros_like(mask)
    beside[80:200, 250:350] = True
    hands = [_hand((100, 100), True), _hand((300, 60), False)]  # a gripping hand and an open one
    assert grip_cover(hands, mask) == (1, 1)
    assert grip_cover(hands, beside) == (1, 0)
    assert grip_cover(hands, np.zeros_like(mask)) == (0, 0)  # no mask on this frame: nothing to hold
    edge = np.zeros_like(mask)
    edge[104:200, 60:160] = True  # the grip 4 px above the mask's edge: within 3 % of its diagonal
    assert grip_cover(hands, edge) == (1, 1)


class _Landmarks(HandDetector):
    """A hand detector that finds the same hands on every frame."""

    name = "drawn"

    def __init__(self, hands):
        super().__init__()
        self.hands = hands

    def hand_mask(self, rgb):
        return np.zeros(rgb.shape[:2], bool)

    def detect(self, rgb):
        return self.hand_mask(rgb), self.hands


def test_curate_rejects_a_clip_whose_hands_hold_something_beside_the_mask_and_says_so():
    rgb = np.full((300, 400, 3), 128, np.uint8)
    clip = Clip("c", np.stack([rgb] * 4), 20.0)
    tracks = Tracks(np.zeros((4, 4, 2), np.float32), np.ones((4, 4), bool))
    beside = np.zeros((300, 400), bool)
    beside[80:200, 250:350] = True
    held = np.zeros_like(beside)
    held[80:200, 60:160] = True
    hands = _Landmarks([_hand((100, 100), True)])
    settings = CurateSettings(hand_frames=4)
    result = curate(clip, Masks(np.stack([beside] * 4)), tracks, settings, hands=hands)
    assert result.metrics["grip_hands"] == 4 and result.metrics["grip_on_mask"] == 0.0
    assert any(r.startswith("hands hold something else: 0.00 of 4 gripping hands hold the product mask < 0.25")
               for r in result.reasons), result.reasons
    # each reason's check is named, in the same order (video_cutout reads the names from the curate record)
    assert len(result.failed) == len(result.reasons) and "grip" in result.failed
    assert result.reasons[result.failed.index("grip")].startswith("hands hold something else")
    result = curate(clip, Masks(np.stack([held] * 4)), tracks, settings, hands=hands)
    assert result.metrics["grip_on_mask"] == 1.0 and not any(r.startswith("hands hold") for r in result.reasons)
    # too few gripping hands: no verdict; 0: off
    few = curate(clip, Masks(np.stack([beside] * 4)), tracks, CurateSettings(hand_frames=2), hands=hands)
    assert few.metrics["grip_hands"] == 2 and not any(r.startswith("hands hold") for r in few.reasons)
    off = curate(clip, Masks(np.stack([beside] * 4)), tracks,
                 CurateSettings(hand_frames=4, min_grip_on_mask=0.0, max_hand_fraction=1.0), hands=hands)
    assert "grip_hands" not in off.metrics
    # a detector without landmarks (the `none` backend) grips nothing
    from pvtt.hands import NoHands

    assert NoHands().detect(rgb)[1] == []
    plain = curate(clip, Masks(np.stack([beside] * 4)), tracks, settings, hands=NoHands())
    assert plain.metrics["grip_hands"] == 0 and plain.metrics["grip_on_mask"] == 1.0
