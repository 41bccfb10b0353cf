"""Pictures as dashboards send them: scaled to the size they are shown at, as JPEG."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["thumbnail"]


def thumbnail(image: bytes, width: int) -> bytes:
    """The image (PNG or JPEG bytes) at its display width as a JPEG: about 10 KB where a poster PNG
    is 450 KB. Widgets keep their values in a saved notebook, so this is what a notebook weighs."""
    decoded = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        return image
    scale = width / decoded.shape[1]
    if scale < 1:
        decoded = cv2.resize(decoded, (width, max(1, round(decoded.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", decoded, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else image
