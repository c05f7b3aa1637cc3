"""Rendering of the planar quadrotor task: anti-aliased shapes painted with numpy only
(no pygame or matplotlib), with the shared painters of :mod:`hint_envs.envs._draw`."""

from __future__ import annotations

import numpy as np

from hint_envs.envs._draw import paint_disk, paint_segment
from hint_envs.envs.planar_quadrotor.physics import QuadrotorParams

#: Pixels per metre of rendered frames.
RENDER_SCALE = 64.0
#: Number of recent positions drawn as the trail of a rendered frame (2 s at 20 Hz).
TRAIL_LENGTH = 40


_COLORS = {
    "outside": (226, 226, 232),
    "inside": (255, 255, 255),
    "grid": (234, 234, 240),
    "box": (90, 90, 104),
    "obstacle": (196, 78, 64),
    "collision": (232, 176, 166),
    "goal": (40, 150, 70),
    "trail": (96, 140, 222),
    "body": (28, 44, 110),
    "rotor": (236, 128, 32),
}


class QuadrotorRenderer:
    """Draws RGB frames of the planar quadrotor task with numpy only.

    A frame shows the flight box (leaving it ends the episode) on a 1 m grid, the obstacle
    disk with the ring the body's centre must stay out of (obstacle radius + arm length),
    the goal marker with its tolerance circle, a trail of recent positions and the
    quadrotor: a body bar of length ``2 * arm_length`` rotated by ``theta`` with a rotor
    at each end, on the side the thrust pushes to.

    Args:
        params: the task whose geometry is drawn.
        scale: pixels per metre.
        margin: metres shown around the flight box.

    Frames are ``(height, width, 3)`` uint8 with ``height = round((z range + 2 margin) *
    scale)``, ``width = round((x range + 2 margin) * scale)``: ``(448, 416, 3)`` for the
    default task.
    """

    def __init__(self, params: QuadrotorParams, scale: float = RENDER_SCALE, margin: float = 0.25):
        self.params = params
        self.scale = float(scale)
        self._x_min = params.x_bounds[0] - margin
        self._z_max = params.z_bounds[1] + margin
        self.width = int(round((params.x_bounds[1] - params.x_bounds[0] + 2 * margin) * scale))
        self.height = int(round((params.z_bounds[1] - params.z_bounds[0] + 2 * margin) * scale))
        self._background = self._draw_background()

    def to_pixels(self, xz: np.ndarray) -> np.ndarray:
        """World ``(..., 2)`` points ``(x, z)`` in metres -> ``(..., 2)`` ``(col, row)`` pixels."""
        xz = np.asarray(xz, dtype=np.float64)
        col = (xz[..., 0] - self._x_min) * self.scale - 0.5
        row = (self._z_max - xz[..., 1]) * self.scale - 0.5
        return np.stack([col, row], axis=-1)

    def _draw_background(self) -> np.ndarray:
        p = self.params
        frame = np.empty((self.height, self.width, 3), dtype=np.uint8)
        frame[:] = _COLORS["outside"]
        # top-left and bottom-right corners of the flight box, in pixels
        c0, r0 = self.to_pixels(np.array([p.x_bounds[0], p.z_bounds[1]]))
        c1, r1 = self.to_pixels(np.array([p.x_bounds[1], p.z_bounds[0]]))
        box = (
            slice(int(np.ceil(r0)), int(np.floor(r1)) + 1),
            slice(int(np.ceil(c0)), int(np.floor(c1)) + 1),
        )
        frame[box] = _COLORS["inside"]
        for x in range(int(np.ceil(p.x_bounds[0])), int(np.floor(p.x_bounds[1])) + 1):
            col = int(round(self.to_pixels(np.array([x, 0.0]))[0]))
            frame[box[0], col] = _COLORS["grid"]
        for z in range(int(np.ceil(p.z_bounds[0])), int(np.floor(p.z_bounds[1])) + 1):
            row = int(round(self.to_pixels(np.array([0.0, z]))[1]))
            frame[row, box[1]] = _COLORS["grid"]
        corners = [(c0, r0), (c1, r0), (c1, r1), (c0, r1), (c0, r0)]
        for start, end in zip(corners[:-1], corners[1:], strict=True):
            paint_segment(frame, start, end, 1.0, _COLORS["box"])
        obstacle = self.to_pixels(np.asarray(p.obstacle_center))
        paint_disk(
            frame,
            obstacle,
            (p.obstacle_radius + p.arm_length) * self.scale,
            _COLORS["collision"],
            ring_width=1.5,
        )
        paint_disk(frame, obstacle, p.obstacle_radius * self.scale, _COLORS["obstacle"])
        goal = self.to_pixels(np.asarray(p.goal))
        paint_disk(frame, goal, p.goal_tolerance * self.scale, _COLORS["goal"], ring_width=2.0)
        paint_disk(frame, goal, 3.5, _COLORS["goal"])
        return frame

    def draw(self, state: np.ndarray, trail: np.ndarray | None = None) -> np.ndarray:
        """Return the frame ``(height, width, 3)`` uint8 for ``state`` ``(6,)``.

        Args:
            state: the quadrotor state ``(x, z, theta, xdot, zdot, thetadot)``.
            trail: recent positions ``(k, 2)`` in metres, oldest first (drawn fading in).
        """
        frame = self._background.copy()
        if trail is not None and len(trail) > 1:
            points = self.to_pixels(trail)
            for k, point in enumerate(points[:-1]):
                opacity = 0.2 + 0.7 * (k + 1) / len(points)
                paint_disk(frame, point, 2.0, _COLORS["trail"], opacity=opacity)
        x, z, theta = (float(v) for v in np.asarray(state)[:3])
        along = np.array([np.cos(theta), np.sin(theta)])  # body axis
        up = np.array([-np.sin(theta), np.cos(theta)])  # thrust direction
        center = np.array([x, z])
        arm = self.params.arm_length
        ends = self.to_pixels(np.stack([center - arm * along, center + arm * along]))
        paint_segment(frame, ends[0], ends[1], 2.5, _COLORS["body"])
        for end in (center - arm * along, center + arm * along):
            top = end + 0.07 * up
            paint_segment(frame, *self.to_pixels(np.stack([end, top])), 1.0, _COLORS["body"])
            rotor = self.to_pixels(np.stack([top - 0.09 * along, top + 0.09 * along]))
            paint_segment(frame, rotor[0], rotor[1], 2.0, _COLORS["rotor"])
        paint_disk(frame, self.to_pixels(center), 4.0, _COLORS["body"])
        return frame
