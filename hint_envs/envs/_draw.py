"""Anti-aliased painting on numpy RGB frames: what the environments' renderers draw with.

Pixel coordinates are ``(col, row)`` floats; colours are RGB triples; frames are
``(H, W, 3)`` uint8 arrays painted in place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["paint_disk", "paint_segment"]


def _window(frame: np.ndarray, lo: np.ndarray, hi: np.ndarray, pad: float):
    """Pixel rows/cols covering the box ``[lo, hi]`` (``(col, row)`` pixel coordinates)
    grown by ``pad``, clipped to the frame; None if empty."""
    height, width = frame.shape[:2]
    c0 = max(int(np.floor(lo[0] - pad)), 0)
    c1 = min(int(np.ceil(hi[0] + pad)) + 1, width)
    r0 = max(int(np.floor(lo[1] - pad)), 0)
    r1 = min(int(np.ceil(hi[1] + pad)) + 1, height)
    if c0 >= c1 or r0 >= r1:
        return None
    rows = np.arange(r0, r1, dtype=np.float64)[:, None]
    cols = np.arange(c0, c1, dtype=np.float64)[None, :]
    return (slice(r0, r1), slice(c0, c1)), rows, cols


def _blend(frame: np.ndarray, where: tuple[slice, slice], alpha: np.ndarray, color) -> None:
    """Alpha-blend ``color`` into ``frame[where]`` with per-pixel opacity ``alpha``."""
    patch = frame[where].astype(np.float32)
    a = alpha.astype(np.float32)[..., None]
    frame[where] = (patch + a * (np.asarray(color, dtype=np.float32) - patch) + 0.5).astype(
        np.uint8
    )


def paint_disk(frame, center, radius, color, opacity=1.0, ring_width=None) -> None:
    """Paint a filled disk, or a ring of ``ring_width`` px, of ``radius`` px at ``center``."""
    center = np.asarray(center, dtype=np.float64)
    window = _window(frame, center - radius, center + radius, 2.0 + (ring_width or 0.0))
    if window is None:
        return
    where, rows, cols = window
    d = np.hypot(cols - center[0], rows - center[1])
    if ring_width is None:
        alpha = np.clip(radius + 0.5 - d, 0.0, 1.0)
    else:
        alpha = np.clip(ring_width / 2 + 0.5 - np.abs(d - radius), 0.0, 1.0)
    _blend(frame, where, opacity * alpha, color)


def paint_segment(frame, start, end, half_width, color) -> None:
    """Paint a segment with round caps, ``half_width`` px, between pixel points."""
    a, b = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    window = _window(frame, np.minimum(a, b), np.maximum(a, b), half_width + 2.0)
    if window is None:
        return
    where, rows, cols = window
    ab = b - a
    t = ((cols - a[0]) * ab[0] + (rows - a[1]) * ab[1]) / max(float(ab @ ab), 1e-12)
    t = np.clip(t, 0.0, 1.0)
    d = np.hypot(cols - a[0] - t * ab[0], rows - a[1] - t * ab[1])
    _blend(frame, where, np.clip(half_width + 0.5 - d, 0.0, 1.0), color)
