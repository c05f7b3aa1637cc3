"""Rendering of the planar quadrotor task: anti-aliased shapes painted with numpy only
(no pygame or matplotlib), with the shared painters of :mod:`hint_envs.envs._draw`."""

from __future__ import annotations

import numpy as np

from hint_envs.envs._draw import ArenaCanvas, paint_disk, paint_segment
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


class QuadrotorRenderer(ArenaCanvas):
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
        super().__init__(params.x_bounds, params.z_bounds, scale, margin)
        self.params = params
        self._background = self._draw_background()

    def _draw_background(self) -> np.ndarray:
        p = self.params
        frame = self.arena_frame(_COLORS)
        obstacle = self.to_pixels(np.asarray(p.obstacle_center))
        paint_disk(
            frame,
            obstacle,
            (p.obstacle_radius + p.arm_length) * self.scale,
            _COLORS["collision"],
            ring_width=1.5,
        )
        paint_disk(frame, obstacle, p.obstacle_radius * self.scale, _COLORS["obstacle"])
        self.paint_goal(frame, p.goal, p.goal_tolerance, _COLORS["goal"])
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
