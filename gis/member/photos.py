"""Photos as they arrive from a phone: what a file must be to be kept (JPEG or PNG, at most 5 MiB)."""

from __future__ import annotations

MAX_PHOTO_BYTES = 5 * 2**20


SIGNATURES = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


def image_type(data: bytes) -> str | None:
    """The picture's media type from its first bytes, or ``None`` when it is none of JPEG, PNG, WebP."""
    for magic, media in SIGNATURES:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
