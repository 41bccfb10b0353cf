"""Reading, sampling and writing video frames, posters and contact sheets."""

from .geometry import center_crop_box, even, fit_short_side, parse_ratio
from .probe import ImageInfo, VideoInfo, probe_image, probe_video, read_image_rgb
from .reader import FrameReader, iter_frames, open_video
from .writer import write_mp4

__all__ = [
    "FrameReader", "ImageInfo", "VideoInfo", "center_crop_box", "even",
    "fit_short_side", "iter_frames", "open_video", "parse_ratio", "probe_image", "probe_video",
    "read_image_rgb", "write_mp4",
]
