"""Anti-aliased painting on numpy RGB frames: what the environments' renderers draw with.

Pixel coordinates are ``(col, row)`` floats; colours are RGB triples; frames are
``(H, W, 3)`` uint8 arrays painted in place.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ArenaCanvas", "paint_disk", "paint_segment"]


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


class ArenaCanvas:
    """A rectangular arena in metres drawn on a frame in pixels: the coordinate transform
    and the background (outside, inside, a 1 m grid and the arena's border).

    Args:
        x_bounds: ``(low, high)`` of the horizontal world axis, in metres.
        y_bounds: ``(low, high)`` of the vertical world axis (up), in metres.
        scale: pixels per metre.
        margin: metres shown around the arena.

    Frames are ``(height, width, 3)`` uint8 with ``height = round((y range + 2 margin) *
    scale)`` and ``width = round((x range + 2 margin) * scale)``.
    """

    def __init__(
        self,
        x_bounds: tuple[float, float],
        y_bounds: tuple[float, float],
        scale: float,
        margin: float,
    ):
        self.x_bounds, self.y_bounds = tuple(x_bounds), tuple(y_bounds)
        self.scale = float(scale)
        self._x_min = self.x_bounds[0] - margin
        self._y_max = self.y_bounds[1] + margin
        self.width = int(round((self.x_bounds[1] - self.x_bounds[0] + 2 * margin) * scale))
        self.height = int(round((self.y_bounds[1] - self.y_bounds[0] + 2 * margin) * scale))

    def to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """World ``(..., 2)`` points in metres -> ``(..., 2)`` ``(col, row)`` pixels."""
        xy = np.asarray(xy, dtype=np.float64)
        col = (xy[..., 0] - self._x_min) * self.scale - 0.5
        row = (self._y_max - xy[..., 1]) * self.scale - 0.5
        return np.stack([col, row], axis=-1)

    def arena_frame(self, colors: dict[str, tuple[int, int, int]]) -> np.ndarray:
        """A new frame with the arena: ``colors`` holds ``"outside"``, ``"inside"``,
        ``"grid"`` (lines every metre) and ``"box"`` (the border)."""
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        frame[:] = colors["outside"]
        # top-left and bottom-right corners of the arena, in pixels
        c0, r0 = self.to_pixels(np.array([self.x_bounds[0], self.y_bounds[1]]))
        c1, r1 = self.to_pixels(np.array([self.x_bounds[1], self.y_bounds[0]]))
        box = (
            slice(max(int(np.ceil(r0)), 0), int(np.floor(r1)) + 1),
            slice(max(int(np.ceil(c0)), 0), int(np.floor(c1)) + 1),
        )
        frame[box] = colors["inside"]
        for x in range(int(np.ceil(self.x_bounds[0])), int(np.floor(self.x_bounds[1])) + 1):
            col = int(round(self.to_pixels(np.array([x, 0.0]))[0]))
            frame[box[0], col] = colors["grid"]
        for y in range(int(np.ceil(self.y_bounds[0])), int(np.floor(self.y_bounds[1])) + 1):
            row = int(round(self.to_pixels(np.array([0.0, y]))[1]))
            frame[row, box[1]] = colors["grid"]
        corners = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
        for start, end in zip(corners[:-1], corners[1:], strict=True):
            paint_segment(frame, start, end, 1.0, colors["box"])
        return frame

    def paint_goal(
        self, frame: np.ndarray, goal: np.ndarray, tolerance: float, color: tuple[int, int, int]
    ) -> None:
        """The goal at ``goal`` (metres): a ring of radius ``tolerance`` (metres) and a dot."""
        center = self.to_pixels(np.asarray(goal))
        paint_disk(frame, center, tolerance * self.scale, color, ring_width=2.0)
        paint_disk(frame, center, 3.5, color)
