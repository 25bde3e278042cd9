"""The bench's truth criterion: what a reviewer holding the true video with B would reject."""

from __future__ import annotations

import numpy as np

from pvtt.bench.run import truth_defects, truth_verdict


def _defects(case, edited, edited_b):
    return truth_defects(case.clip.frames, edited, case.video_b, case.masks_a.data, case.masks_b, edited_b)


def test_the_truth_itself_is_a_good_edit(case):
    metrics = _defects(case, case.video_b, case.masks_b)
    assert truth_verdict(metrics, 0.5) == [], metrics
    assert metrics["a_left"] < 0.02 and metrics["b_offset"] < 0.02 and metrics["b_missing"] < 0.02


def test_a_left_in_place_and_b_missing_are_rejected(case):
    metrics = _defects(case, case.clip.frames, np.zeros_like(case.masks_b))
    reasons = truth_verdict(metrics, 0.5)
    assert any(r.startswith("a_left") for r in reasons) and any(r.startswith("b_missing") for r in reasons), metrics


def test_b_shifted_off_the_truth_is_misplaced(case):
    shift = case.masks_b.shape[2] // 5
    moved = np.roll(case.masks_b, shift, axis=2)
    edited = np.where(moved[..., None], np.roll(case.video_b, shift, axis=2), case.background)
    reasons = truth_verdict(_defects(case, edited, moved), 0.5)
    assert any(r.startswith("b_offset") for r in reasons), reasons


def test_a_thin_ring_b_a_few_pixels_off_is_not_cut_but_half_of_it_is():
    """B cut is judged on silhouettes: a ring's 3-px band misses the truth's band when 3 px off (the bench's JEW002
    rings, b_missing 0.44-0.71 of the band), its outline does not; half a ring is cut either way."""
    from pvtt.bench.run import truth_defects

    h, w = 80, 120
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - 40, xx - 60)
    ring = ((r > 20) & (r < 23))[None]
    off = np.roll(ring, 3, axis=2)
    frames = np.zeros((1, h, w, 3), np.uint8)
    a = np.zeros_like(ring)
    assert truth_defects(frames, frames, frames, a, ring, off)["b_missing"] < 0.1
    half = ring.copy()
    half[:, :, 60:] = False
    assert truth_defects(frames, frames, frames, a, ring, half)["b_missing"] > 0.35


def test_a_flat_fill_where_b_does_not_cover_is_a_smear(case):
    small_b = np.zeros_like(case.masks_b)
    edited = case.background.copy()
    for t in range(len(edited)):
        a = case.masks_a.data[t]
        edited[t][a] = case.background[t][a].reshape(-1, 3).mean(axis=0).astype(np.uint8)
    metrics = truth_defects(case.clip.frames, edited, case.background, case.masks_a.data, small_b, small_b)
    assert any(r.startswith("smear") for r in truth_verdict(metrics, 0.5)), metrics
    clean = truth_defects(case.clip.frames, case.background, case.background, case.masks_a.data, small_b, small_b)
    assert not any(r.startswith("smear") for r in truth_verdict(clean, 0.5)), clean


def test_a_failed_segmentation_is_always_bad():
    assert truth_verdict({"mask_iou": 0.08}, 0.5)[0].startswith("segmentation failed")


def _ring(shape, centre, radius, width=2):
    import cv2

    ring = np.zeros(shape, np.uint8)
    cv2.circle(ring, centre, radius, 1, width)
    return ring > 0


def test_a_thin_loop_of_a_left_beside_b_is_rejected_though_it_is_little_area(case):
    """A second bracelet of A, a thin loop beside B that the edit kept: a few percent of A's area, but a piece
    as large as the product itself, which a reviewer sees at once."""
    t_count, height, width = case.masks_b.shape
    source, edited, masks_a = case.clip.frames.copy(), case.video_b.copy(), case.masks_a.data.copy()
    for t in range(t_count):
        ys, xs = np.nonzero(case.masks_b[t])
        radius = max(6, int(0.2 * (ys.max() - ys.min())))
        centre = (max(radius + 1, int(xs.min()) - radius - 6), int(ys.mean()))
        loop = _ring((height, width), centre, radius, 1) & ~case.masks_b[t]
        source[t][loop] = edited[t][loop] = (255, 0, 0)  # A's loop, kept by the edit; the truth shows background
        masks_a[t] |= loop
    metrics = truth_defects(source, edited, case.video_b, masks_a, case.masks_b, case.masks_b)
    assert metrics["a_left"] < 0.05 < 0.15 < metrics["a_left_extent"], metrics
    assert any(r.startswith("a_left_extent") for r in truth_verdict(metrics, 0.5)), metrics


def test_a_mask_that_left_out_a_far_piece_of_a_failed_unlike_one_a_little_small():
    import cv2

    from pvtt.bench.run import missed_reach

    true_a = np.zeros((120, 200), bool)
    true_a[40:90, 110:160] = True  # the bracelet the mask holds
    true_a |= _ring(true_a.shape, (70, 65), 22)  # the other one, a thin loop to its left
    held = np.zeros_like(true_a)
    held[40:90, 110:160] = True
    assert missed_reach(held, true_a) > 0.15
    snug = cv2.erode(true_a.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # 2 px short all round
    snug |= held
    assert missed_reach(snug | _ring(true_a.shape, (70, 65), 22, 1), true_a) < 0.05
    assert missed_reach(np.zeros_like(true_a), true_a) == 1.0 and missed_reach(held, np.zeros_like(true_a)) is None
    metrics = {"mask_iou": 0.7, "missed_reach": missed_reach(held, true_a)}
    assert truth_verdict(metrics, 0.5)[0].startswith("segmentation failed (the mask left out a piece of A")


def test_a_case_rejected_before_the_judge_counts_as_rejected():
    from pvtt.bench.run import CaseScore, summarize

    scores = [CaseScore("c0", "track", "reject", ["curate: mask misses part of the product"],
                        {"mask_iou": 0.6, "missed_reach": 0.4, "rejected_at": "curate", "truly_bad": True,
                         "truth_reasons": ["segmentation failed"]}),
              CaseScore("c1", "synthesize", "keep", [], {"mask_iou": 0.95, "truly_bad": False}),
              CaseScore("c2", "synthesize", "reject", ["remnant of A"], {"mask_iou": 0.95, "truly_bad": False}),
              CaseScore("c3", "locate", "reject", ["locate: product not found"], {"rejected_at": "locate"}),
              CaseScore("c4", "track", None, [], {"mask_iou": 0.9, "truth_reasons": []}),
              CaseScore("c5", "track", "reject", ["curate: mask in floating pieces"],
                        {"mask_iou": 0.9, "rejected_at": "curate", "truth_reasons": []})]
    summary = summarize(scores)
    assert summary["verdicts"] == {"bad_rejected": 1, "bad_kept": 0, "good_kept": 1, "good_rejected": 1}
    assert summary["agreement"] == 2 / 3  # c3's truth is unknown: no edit, no segmentation to judge
    assert summary["rejected_before_judge"] == {"curate": 1} and summary["not_paired"] == 1
    # c5: rejected before any edit with a right segmentation: in no verdict, but counted as a possible good pair lost
    assert summary["rejected_early_segmentation_ok"] == 1


def test_a_rerun_whose_clip_is_now_rejected_earlier_has_no_current_pair(tmp_path):
    """The pair's synthesize record from an earlier run stays in the workspace; pairs.json says what the last build
    made."""
    from pvtt.bench.run import current_pair
    from pvtt.store import Workspace, write_json
    from pvtt.types import ItemRecord, Status

    ws = Workspace(tmp_path)
    ws.write_record(ItemRecord("synthesize", "c-s00-w00__c-B", "k", Status.DONE))
    assert current_pair(ws).item_id == "c-s00-w00__c-B"  # no pairs.json: an older workspace, every record counts
    write_json(ws.root / "pairs.json", [])
    assert current_pair(ws) is None
    write_json(ws.root / "pairs.json", [{"pair_id": "c-s00-w00__c-B"}])
    assert current_pair(ws).status is Status.DONE


def test_a_case_whose_first_shot_was_dropped_is_lined_up_with_its_own_clip(tmp_path):
    """A case video cut into two shots, the first too short to keep: the truth is compared from the second shot's
    first frame on (scored against s00's missing clip, the truth ran 15 frames early and a good case read as B
    misplaced)."""
    from pvtt.bench.run import case_clip
    from pvtt.store import Workspace
    from pvtt.types import ItemRecord, Status

    ws = Workspace(tmp_path)
    clip = {"clip_id": "c-s01-w00", "start_time": 0.75, "fps": 20.0}
    ws.write_record(ItemRecord("normalize", "c", "n", Status.DONE, outputs={"clips": [clip]}))
    assert case_clip(ws, "c") == ("c-s01-w00", 15)
    pair = ItemRecord("synthesize", "c-s01-w00__c-B", "p", Status.DONE)
    assert case_clip(ws, "c", pair) == ("c-s01-w00", 15)
    assert case_clip(Workspace(tmp_path / "empty"), "c") == ("c-s00-w00", 0)  # nothing normalized


def test_a_case_whose_clip_curate_rejected_is_scored_from_its_masks(tmp_path):
    """No pair was made: the pipeline's verdict is curate's rejection, and the truth is known because the mask left
    out a far piece of A (one of two bracelets)."""
    from pvtt import artifacts
    from pvtt.bench.run import score_case
    from pvtt.store import Workspace
    from pvtt.types import ItemRecord, Masks, Status

    t_count, h, w = 6, 60, 100
    true_a = np.zeros((t_count, h, w), bool)
    true_a[:, 20:40, 60:80] = True  # the bracelet the mask holds
    true_a[:, 20:40, 10:30] = True  # the other one, beside it
    held = true_a.copy()
    held[:, :, :50] = False
    case = tmp_path / "case000"
    case.mkdir()
    np.savez(case / "truth.npz", masks_a=true_a, masks_b=true_a, homographies=np.repeat(np.eye(3)[None], t_count, 0))
    ws = Workspace(tmp_path / "ws")
    clip = {"clip_id": "case000-s00-w00", "start_time": 0.0, "fps": 10.0}
    ws.write_record(ItemRecord("normalize", "case000", "n", Status.DONE, outputs={"clips": [clip]}))
    path = ws.root / "segment" / "m.npz"
    path.parent.mkdir(parents=True)
    artifacts.save_masks(path, Masks(held))
    ws.write_record(ItemRecord("segment", "case000-s00-w00", "s", Status.DONE, outputs={"masks_path": ws.rel(path)}))
    ws.write_record(ItemRecord("curate", "case000-s00-w00", "c", Status.REJECTED,
                               reason="mask misses part of the product"))
    score = score_case(case, ws)
    assert score.verdict == "reject" and score.reasons == ["curate: mask misses part of the product"]
    assert score.metrics["rejected_at"] == "curate" and score.metrics["truly_bad"] is True
    assert score.metrics["missed_reach"] > 0.15
    # the same with a mask that holds all of A: the truth of a case without an edit is not known
    artifacts.save_masks(path, Masks(true_a))
    assert "truly_bad" not in score_case(case, ws).metrics
    # a pair made but rejected at synthesize before an edit (its tracks lost): the failed segmentation is still known
    artifacts.save_masks(path, Masks(held))
    ws.write_record(ItemRecord("curate", "case000-s00-w00", "c", Status.DONE))
    ws.write_record(ItemRecord("synthesize", "case000-s00-w00__case000-B", "p", Status.REJECTED,
                               reason="tracks lost at frame 3"))
    score = score_case(case, ws)
    assert score.verdict == "reject" and score.metrics["rejected_at"] == "synthesize"
    assert score.metrics["truly_bad"] is True and score.reasons == ["tracks lost at frame 3"]


def test_a_ghost_of_a_where_it_was_is_rejected_a_texture_drawn_differently_is_not(case):
    """What shows where A was, away from B: a faint ghost of A (half A, half the background; cases24b's case007
    showed blurred pieces of its vases inside B's rings) is pulled towards A and rejected, though no pixel of A is kept
    as it was (a_left); the true background shifted by 3 px (the same texture, drawn differently) is not."""
    small_b = np.zeros_like(case.masks_b)
    ghost, shifted = case.background.copy(), case.background.copy()
    for t in range(len(ghost)):
        a = case.masks_a.data[t]
        ghost[t][a] = (0.5 * case.clip.frames[t][a] + 0.5 * case.background[t][a]).astype(np.uint8)
        shifted[t][a] = np.roll(case.background[t], 3, axis=1)[a]
    bad = truth_defects(case.clip.frames, ghost, case.background, case.masks_a.data, small_b, small_b)
    assert bad["a_left"] < 0.05 and bad["a_ghost"] > 0.5, bad
    assert any(r.startswith("a_ghost") for r in truth_verdict(bad, 0.5))
    fine = truth_defects(case.clip.frames, shifted, case.background, case.masks_a.data, small_b, small_b)
    assert fine["a_ghost"] < 0.02 and not any(r.startswith("a_ghost") for r in truth_verdict(fine, 0.5)), fine
