"""JPEG and PAM answers made from the PNG that ``RestApiGet`` returns.

``RestApiGet`` cannot pass ``Accept``, so Orthanc always gives PNG. Decoding it
with ``orthanc.UncompressImage`` and encoding with ``orthanc.CompressJpegImage``
gives the same bytes as Orthanc's own ``Accept: image/jpeg`` answer; PAM is
written here the way Orthanc writes it.
"""

import sys
from typing import Any, Optional

from .http_rules.accept import JPEG, PAM

DEFAULT_JPEG_QUALITY = 90


class UnsupportedQuality(ValueError):
    """``?quality`` is not an integer from 1 to 100 (Orthanc answers 415)."""


def jpeg_quality(value: Optional[str]) -> int:
    """Read ``?quality`` as Orthanc does."""
    if value is None:
        return DEFAULT_JPEG_QUALITY
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise UnsupportedQuality(value)
    return int(value)


def convert_png(api: Any, png: bytes, media_type: str, quality: int) -> bytes:
    """Re-encode a PNG answer as ``media_type`` (JPEG or PAM)."""
    image = api.UncompressImage(png, api.ImageFormat.PNG)
    pixel_format = image.GetImagePixelFormat()
    width, height = image.GetImageWidth(), image.GetImageHeight()
    pitch, buffer = image.GetImagePitch(), image.GetImageBuffer()

    if media_type == JPEG:
        return bytes(
            api.CompressJpegImage(pixel_format, width, height, pitch, buffer, quality)
        )
    if media_type == PAM:
        return _pam(api, pixel_format, width, height, pitch, bytes(buffer))
    raise ValueError(media_type)


def _pam(
    api: Any, pixel_format: Any, width: int, height: int, pitch: int, buffer: bytes
) -> bytes:
    formats = api.PixelFormat
    layouts = {
        formats.GRAYSCALE8: (1, 1, 255, "GRAYSCALE"),
        formats.GRAYSCALE16: (1, 2, 65535, "GRAYSCALE"),
        formats.SIGNED_GRAYSCALE16: (1, 2, 65535, "GRAYSCALE"),
        formats.RGB24: (3, 1, 255, "RGB"),
        formats.RGBA32: (4, 1, 255, "RGB_ALPHA"),
    }
    depth, sample_size, maximum, tuple_type = layouts[pixel_format]

    header = "P7\nWIDTH %d\nHEIGHT %d\nDEPTH %d\nMAXVAL %d\nTUPLTYPE %s\nENDHDR\n" % (
        width,
        height,
        depth,
        maximum,
        tuple_type,
    )
    row_size = width * depth * sample_size
    rows = b"".join(buffer[y * pitch : y * pitch + row_size] for y in range(height))
    if sample_size == 2 and sys.byteorder == "little":
        rows = _swap_bytes(rows)  # PAM samples are big-endian
    return header.encode("ascii") + rows


def _swap_bytes(data: bytes) -> bytes:
    swapped = bytearray(len(data))
    swapped[0::2] = data[1::2]
    swapped[1::2] = data[0::2]
    return bytes(swapped)
