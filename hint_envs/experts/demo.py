"""The ``hint-demo`` picture: quadrotor demonstrations, their replay and their gains.

The picture has three panels:

1. the demonstrations in the x-z plane, coloured by the side of the obstacle the expert
   took (the bimodality HINT must reproduce);
2. one demonstration replayed from perturbed start states, open loop (the nominal inputs
   ``u_bar`` alone) and closed loop (``u = u_bar + K (x - x_bar)``): the synthesised gains
   pull the perturbed flights back onto the demonstration;
3. the size of the synthesised TVLQR gains along that demonstration.

``hint-demo`` (:func:`hint_envs.experts.cli.demo_main`) collects the demonstrations and
calls :func:`draw`; run ``hint-demo --help`` for the options.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import gymnasium as gym
import numpy as np

import hint_envs  # noqa: F401  (registers the environments)
from hint_envs._io import write_file
from hint_envs.core import Demonstration, Primitives

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


def replay(
    env: gym.Env, primitives: Primitives, start: np.ndarray, gains: bool = True
) -> np.ndarray:
    """Execute ``primitives`` from ``start`` in ``env`` (an unwrapped control env).

    Returns:
        the visited states ``(T + 1, d_state)`` (fewer if the episode terminated).
    """
    obs, _ = env.reset(options={"state": start})
    index = env.control_indices
    states = [env.get_state()]
    for t in range(len(primitives)):
        u = primitives(obs[index], t) if gains else primitives.u_bar[t]
        obs, _, terminated, _, _ = env.step(u)
        states.append(env.get_state())
        if terminated:
            break
    return np.asarray(states)


def draw(
    demos: Sequence[Demonstration],
    env: gym.Env,
    out: Path,
    offset: np.ndarray,
    show: int = 0,
) -> dict[str, float]:
    """Draw the three-panel picture of the module docstring into ``out`` (PNG).

    Returns:
        mean final-position errors of the panel-2 replays, keys "open_loop", "closed_loop".
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = env.unwrapped.params
    fig, axes = plt.subplots(1, 3, figsize=(15, 5), gridspec_kw={"width_ratios": [1, 1, 1.2]})
    colours = {"left": "tab:blue", "right": "tab:orange"}

    def scene(ax):
        ax.add_patch(plt.Circle(params.obstacle_center, params.obstacle_radius, color="0.4"))
        ax.add_patch(
            plt.Circle(params.goal, params.goal_tolerance, fill=False, color="tab:green", lw=2)
        )
        ax.plot(*params.goal, marker="*", color="tab:green", ms=14)
        ax.set_aspect("equal")
        ax.set_xlim(-2.0, 2.0)
        ax.set_ylim(-0.6, 3.6)
        ax.set_xlabel("x [m]")
        ax.set_ylabel("z [m]")

    ax = axes[0]
    scene(ax)
    for demo in demos:
        path = np.vstack([demo.states, demo.final_state[None]])
        mode = str(demo.attrs.get("mode", "left"))
        ax.plot(path[:, 0], path[:, 1], color=colours.get(mode, "k"), alpha=0.6, lw=1)
    for mode, colour in colours.items():
        count = sum(str(d.attrs.get("mode")) == mode for d in demos)
        ax.plot([], [], color=colour, label=f"{mode} ({count})")
    ax.legend(loc="lower right")
    ax.set_title(f"{len(demos)} expert demonstrations")

    ax = axes[1]
    scene(ax)
    demo = demos[show]
    reference = np.vstack([demo.states, demo.final_state[None]])
    ax.plot(reference[:, 0], reference[:, 1], color="k", lw=2, label="demonstration")
    errors: dict[str, list[float]] = {"open_loop": [], "closed_loop": []}
    for sign in (-1.0, 1.0):
        start = demo.states[0] + sign * offset
        for gains, style, key in ((False, ":", "open_loop"), (True, "-", "closed_loop")):
            path = replay(env.unwrapped, demo.primitives, start, gains=gains)
            errors[key].append(float(np.linalg.norm(path[-1, :2] - reference[len(path) - 1, :2])))
            label = None if sign > 0 else ("closed loop (K)" if gains else "open loop (u_bar)")
            ax.plot(
                path[:, 0],
                path[:, 1],
                style,
                color="tab:red" if gains else "tab:purple",
                label=label,
            )
    ax.legend(loc="lower right")
    ax.set_title("replay from perturbed starts")

    ax = axes[2]
    time_axis = np.arange(len(demo)) * params.dt
    gains = demo.primitives.K
    ax.plot(time_axis, np.linalg.norm(gains[:, 0, :], axis=-1), label="|K| thrust row")
    ax.plot(time_axis, np.linalg.norm(gains[:, 1, :], axis=-1), label="|K| torque row")
    ax.set_yscale("log")
    ax.set_xlabel("t [s]")
    ax.set_title("synthesised TVLQR gains along the demonstration")
    ax.legend()
    fig.tight_layout()
    image = io.BytesIO()  # drawn in memory, written in one go: never a half-written PNG
    fig.savefig(image, dpi=90, format="png")
    plt.close(fig)
    write_file(out, image.getvalue())
    return {key: float(np.mean(value)) for key, value in errors.items()}
