"""Per-template stage: a template video split into shots and normalized clips (:mod:`pvtt.normalize` does the work)."""

from __future__ import annotations

from dataclasses import asdict

from pvtt.config import MediaSettings, NormalizeSettings, ShotSettings, settings_key
from pvtt.normalize import normalize_video
from pvtt.stage import Stage
from pvtt.store import Workspace, file_fingerprint
from pvtt.types import ItemRecord, Status, Template


class NormalizeStage(Stage[Template]):
    """Per template: shots → normalized clips. Also writes the ``shots`` record, reused when only
    normalize settings change (the video is then decoded once more, but shots are not re-detected)."""

    name = "normalize"
    version = "2"  # 2: a flat lead-in frame must also be plain (a small product on a white backdrop is content)
    shots_version = "1"  # the shot cuts' own version: normalize settings and versions do not re-detect them

    def __init__(self, workspace: Workspace, shots: ShotSettings, norm: NormalizeSettings, media: MediaSettings,
                 retry_failed: bool = True):
        super().__init__(workspace, retry_failed)
        self.shots, self.norm, self.media = shots, norm, media

    def shots_key(self, template: Template) -> str:
        return settings_key("shots", self.shots_version, file_fingerprint(template.video), self.shots,
                            self.media.max_pixels)

    def key(self, template: Template) -> str:
        return settings_key("normalize", self.version, self.shots_key(template), self.norm, self.media.crf,
                            self.media.preset)

    def run(self, template: Template, key: str) -> tuple[dict, dict]:
        ws = self.workspace
        shots_key = self.shots_key(template)
        shots_record = ws.cached("shots", template.id, shots_key)
        known_cuts = shots_record.outputs["cuts"] if shots_record and shots_record.status is Status.DONE else None
        out_dir = ws.artifact_dir("clips", template.id, key)
        result = normalize_video(template.video, out_dir, template.id, self.shots, self.norm, self.media, known_cuts)
        cuts = [shot.start_frame for shot in result.shots[1:]]
        if shots_record is None:
            ws.write_record(ItemRecord("shots", template.id, shots_key, Status.DONE,
                                       outputs={"cuts": cuts, "shots": [asdict(s) for s in result.shots]},
                                       metrics={"num_shots": len(result.shots)}))
        clips = []
        for clip in result.clips:
            entry = asdict(clip)
            entry["path"] = ws.rel(clip.path)
            clips.append(entry)
        outputs = {"clips": clips, "source_size": list(result.source_size), "rotation": result.rotation,
                   "dropped": result.dropped}
        metrics = {"source_frames": result.source_frames, "source_fps": round(result.source_fps, 4),
                   "num_shots": len(result.shots), "num_clips": len(clips), "cuts_cached": known_cuts is not None}
        return outputs, metrics
