"""What the API measures and caps, in one place for the client's checks and the emulator's alike:
prompt length in UTF-16 code units, and the bytes a data URI or an image may carry. (The checks
themselves stay apart: the emulator stands in for the service and must catch the client's mistakes.)"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DATA_URI_MAX_BYTES", "SDK_DATA_URI_MAX_BYTES", "URL_IMAGE_MAX_BYTES", "utf16_len"]

# Runway's media table: the most a data URI may carry, per kind of input. The emulator enforces it
# (and holds no input larger than it in memory, a URL's included).
DATA_URI_MAX_BYTES: Mapping[str, int] = {"image": 5_000_000, "video": 16_000_000, "audio": 16_000_000}

# The official SDK caps every media data URI at 5 MB since 5.19: what the client sends a paid
# provider inline (uploads, or an https URL, carry more).
SDK_DATA_URI_MAX_BYTES = 5_000_000

# An image sent by URL or upload.
URL_IMAGE_MAX_BYTES = 16_000_000


def utf16_len(text: str) -> int:
    """A prompt's length as the API counts it: UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2
