"""Media IO: video on PyAV (:mod:`pvtt.media.video`), images on Pillow (:mod:`pvtt.media.image`)."""

from pvtt.media.image import load_image_rgba, write_png
from pvtt.media.video import VideoInfo, VideoWriter, iter_frames, probe, read_video, write_video

__all__ = ["VideoInfo", "VideoWriter", "iter_frames", "load_image_rgba", "probe", "read_video", "write_png", "write_video"]
