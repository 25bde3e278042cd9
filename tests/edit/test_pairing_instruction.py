from __future__ import annotations

import numpy as np
import pytest

from pvtt.instruction import make_instruction
from pvtt.pairing import PairClip, PairingSettings, PairProduct, make_pairs, misfit, shape_similarity


def _box(h, w):
    return np.ones((h, w), bool)


def _disc(n=40):
    yy, xx = np.mgrid[:n, :n]
    return (yy - n / 2) ** 2 + (xx - n / 2) ** 2 < (n / 2) ** 2


CLIPS = [PairClip(f"c{i}", f"t{i}", cat, sub, sil) for i, (cat, sub, sil) in
         enumerate([("jewelry", "bracelet", _disc()), ("home", "mug", _box(40, 30)), ("toys", "car", _box(20, 60))])]
PRODUCTS = [PairProduct(f"p{i}", f"t{i}", cat, sub, sil) for i, (cat, sub, sil) in
            enumerate([("jewelry", "bracelet", _disc(50)), ("home", "vase", _box(80, 60)), ("toys", "car", _disc(30)),
                        ("jewelry", "bracelet", _disc(36)), ("art", "print", _box(41, 31)),
                        ("home", "lamp", _box(60, 40))])]


def test_pairing_reproducible_and_never_self_pairs():
    s = PairingSettings(strategy="sampled:2", seed=7)
    a, b = make_pairs(CLIPS, PRODUCTS, s), make_pairs(list(reversed(CLIPS)), PRODUCTS[::-1], s)
    assert a == b and len(a) == 2 * len(CLIPS)
    everything = make_pairs(CLIPS, PRODUCTS, PairingSettings(strategy="all"))
    assert len(everything) == len(CLIPS) * (len(PRODUCTS) - 1)
    for pair in everything:
        assert pair.pair_id == f"{pair.clip_id}__{pair.product_id}"
        assert pair.clip_id[1:] != pair.product_id[1:]  # c0/p0 share template t0


def test_pairing_grades_as_designed():
    pairs = {p.pair_id: p for p in make_pairs(CLIPS, PRODUCTS, PairingSettings(strategy="all"))}
    assert pairs["c0__p3"].difficulty == "easy"
    assert "c1__p1" not in pairs  # from the same template
    assert pairs["c1__p5"].difficulty == "medium"  # same category, another subcategory
    assert pairs["c2__p0"].difficulty in ("hard", "expert")
    assert pairs["c1__p4"].difficulty == "hard"  # same silhouette, different category
    assert pairs["c2__p1"].difficulty == "expert"  # flat car vs tall vase
    same = make_pairs(CLIPS, PRODUCTS, PairingSettings(strategy="same-category"))
    assert {p.difficulty for p in same} <= {"easy", "medium"}


def test_shape_similarity():
    assert shape_similarity(_disc(40), _disc(80)) > 0.9
    assert shape_similarity(_box(10, 100), _box(100, 10)) < 0.2
    assert shape_similarity(np.zeros((5, 5), bool), _disc()) == 0.0


def test_bad_strategy_rejected():
    with pytest.raises(ValueError, match="strategy"):
        PairingSettings(strategy="some:x")


def test_instruction_phrasings():
    text = make_instruction("a Bracelet", "pearl necklace", 0)
    assert "bracelet" in text and "pearl necklace" in text
    assert len({make_instruction("bracelet", "necklace", s) for s in range(30)}) >= 3
    assert make_instruction("bracelet", "necklace", 5) == make_instruction("bracelet", "necklace", 5)
    assert "product" in make_instruction(None, None, 1)


# -- products that cannot fit A's slot -------------------------------------------------------------------------------


def _insert_settings(**kw):
    from pvtt.insert import InsertSettings

    return InsertSettings(**kw)


def test_pairing_leaves_out_products_that_cannot_fit_and_insert_agrees():
    """A's slot is a 100x100 box at the left edge of a 320x240 frame. A square product fits; a 1:24 stick scaled
    to A's area is 4.9x taller than A's box (> insert.max_scale_change 3); a 1:3.3 board at A's area is 183 px
    wide, centred on A's box at x=50, so 23 % of it is left of the frame (> insert.max_outside 15 %)."""
    from pvtt.errors import RejectItem
    from pvtt.insert import make_inserter
    from pvtt.types import Box

    mask = np.zeros((240, 320), bool)
    mask[100:200, 0:100] = True
    clip = PairClip("c0", "t0", "home", "mug", mask[100:200, 0:100], Box(0, 100, 100, 200), (320, 240))
    square, stick = np.ones((50, 50), bool), np.ones((240, 10), bool)
    wide = np.ones((60, 200), bool)
    products = [PairProduct("p1", "t1", "home", "vase", square), PairProduct("p2", "t2", "toys", "stick", stick),
                PairProduct("p3", "t3", "toys", "board", wide)]
    insert = _insert_settings()
    everything = make_pairs([clip], products, PairingSettings(strategy="all"), insert)
    assert [p.product_id for p in everything] == ["p1"]
    assert len(make_pairs([clip], products, PairingSettings(strategy="all", fit_only=False), insert)) == 3
    assert len(make_pairs([clip], products, PairingSettings(strategy="all"))) == 3  # no insert settings: no check
    for seed in range(5):  # sampled:1 draws the one that fits, whatever the seed
        assert [p.product_id for p in make_pairs([clip], products, PairingSettings(strategy="sampled:1", seed=seed),
                                                 insert)] == ["p1"]
    # the insert stage reaches the same verdict, with the same reason, on the same inputs
    frame = np.full((240, 320, 3), 120, np.uint8)
    inserter = make_inserter()
    for product in products:
        rgba = np.zeros(product.silhouette.shape + (4,), np.uint8)
        rgba[..., :3] = 200
        rgba[..., 3] = product.silhouette * 255
        reason = misfit(clip, product, insert)
        try:
            inserter.insert(frame, frame, mask, clip.box, rgba)
            rejected = None
        except RejectItem as err:
            rejected = str(err)
        assert rejected == reason, (product.product_id, rejected, reason)
    assert misfit(clip, products[1], insert).startswith("product does not fit A's slot")
    assert misfit(clip, products[2], insert).startswith("product would leave the frame")
