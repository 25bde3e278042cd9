"""The typed artifact readers: what an artifact's stage recorded, read back typed; a missing, rejected or failed
record is one clear error naming the stage and the item."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pvtt import artifacts
from pvtt.errors import BadInput, MissingArtifact
from pvtt.store import Workspace
from pvtt.types import Box, ItemRecord, Masks, Status


def test_a_reader_gives_the_typed_artifact_of_a_done_record(tmp_path):
    ws = Workspace(tmp_path)
    ws.write_record(ItemRecord("locate", "c1", "k", Status.DONE,
                               outputs={"box": [1.0, 2.0, 30.0, 40.0], "source": "catalog", "confidence": 0.9}))
    data = np.zeros((3, 8, 8), bool)
    data[:, 2:5, 3:6] = True
    path = ws.artifact_dir("segment", "c1", "k") / "masks.npz"
    path.parent.mkdir(parents=True)
    artifacts.save_masks(path, Masks(data))
    ws.write_record(ItemRecord("segment", "c1", "k", Status.DONE, outputs={"masks_path": ws.rel(path)}))
    assert artifacts.box(ws, "c1") == Box(1.0, 2.0, 30.0, 40.0, confidence=0.9, source="catalog")
    assert np.array_equal(artifacts.masks(ws, "c1").data, data)
    assert artifacts.record(ws, "segment", "c1").key == "k"


@pytest.mark.parametrize("status", [None, Status.REJECTED, Status.FAILED])
def test_a_missing_or_unfinished_record_is_one_error_naming_the_stage_and_item(tmp_path, status):
    ws = Workspace(tmp_path)
    if status is not None:
        ws.write_record(ItemRecord("track", "c1", "k", status, reason="lost every point"))
    with pytest.raises(MissingArtifact, match=r"^track has no finished result for c1 \(run the stages in order\)$") \
            as caught:
        artifacts.tracks(ws, "c1")
    assert isinstance(caught.value, BadInput)  # the reading stage records the item as failed, the run goes on
    assert (caught.value.stage, caught.value.item_id) == ("track", "c1")
    assert (caught.value.record and caught.value.record.status) == status
    again = pickle.loads(pickle.dumps(caught.value))
    assert str(again) == str(caught.value) and again.stage == "track"
    assert artifacts.record(ws, "track", "c1", required=False) is None
    assert artifacts.depth(ws, "c1", required=False) is None  # an artifact only some strategies make


def test_the_target_image_is_the_photo_cutout_else_the_video_cutout(tmp_path):
    ws = Workspace(tmp_path)
    with pytest.raises(MissingArtifact, match="no target image for product P1: neither its photo cutout nor"):
        artifacts.cutout(ws, "P1")
    ws.write_record(ItemRecord("video_cutout", "P1", "v", Status.DONE, outputs={"cutout_path": "v.png"}))
    assert artifacts.target(ws, "P1").outputs["source"] == "video"
    ws.write_record(ItemRecord("cutout", "P1", "c", Status.DONE, outputs={"cutout_path": "c.png"}))
    assert artifacts.target(ws, "P1").outputs == {"cutout_path": "c.png", "source": "photo"}
    with pytest.raises(MissingArtifact, match="^product has no finished result for P1"):
        artifacts.photo(ws, "P1")


def test_a_rejected_pair_keeps_its_files_for_the_readers(tmp_path):
    ws = Workspace(tmp_path)
    masks = np.zeros((2, 5, 11), bool)
    masks[:, 1:3, 4:9] = True
    path = ws.artifact_dir("synthesize", "c1__P1", "k") / "masks_b.npz"
    artifacts.save_masks_b(path, masks)
    ws.write_record(ItemRecord("synthesize", "c1__P1", "k", Status.REJECTED, reason="remnant of A",
                               outputs={"masks_b_path": ws.rel(path)}))
    assert np.array_equal(artifacts.masks_b(ws, "c1__P1"), masks)
    with pytest.raises(MissingArtifact, match="synthesize has no edited_path for c1__P1"):
        artifacts.edited(ws, "c1__P1")
