"""Draw PushT expert demonstrations from a demonstration file: paths and modes.

Left: the agent's path in the first ``--paths`` demonstrations, coloured by the face of
the T it pushed first, over the goal pose. Right: how often each (face, turn) mode occurs
in the whole file.

Usage::

    python benchmarks/plot_pusht_demos.py                 # docs/img/pusht_demos.png
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FACES = ("stem_side", "top", "underside", "bar_end", "stem_tip", "none")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="benchmarks/data/pusht_state_200.hdf5")
    parser.add_argument("--paths", type=int, default=16, help="demonstrations drawn left")
    parser.add_argument("--out", default="docs/img/pusht_demos.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    from hint_envs.data import read_demonstrations
    from hint_envs.experts.pusht import GOAL_POSE, OUTLINE

    demos = read_demonstrations(REPO / args.dataset).demos
    colours = dict(zip(FACES, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(10, 4.4), gridspec_kw={"width_ratios": [1, 1.2]})

    c, s = np.cos(GOAL_POSE[2]), np.sin(GOAL_POSE[2])
    goal = OUTLINE @ np.array([[c, s], [-s, c]]) + np.array(GOAL_POSE[:2])
    ax.add_patch(Polygon(goal, closed=True, color="lightgreen", alpha=0.6, label="goal"))
    seen = set()
    for demo in demos[: args.paths]:
        face = demo.attrs["mode"].split("/")[0]
        path = np.vstack([demo.observations[:, :2], demo.final_observation[None, :2]])
        ax.plot(*path.T, color=colours[face], lw=1.2, label=None if face in seen else face)
        ax.plot(*path[0], "o", color=colours[face], ms=3)
        seen.add(face)
    ax.set(xlim=(0, 512), ylim=(512, 0), aspect="equal", xlabel="x (px)", ylabel="y (px)")
    ax.set_title(f"agent paths, first {args.paths} demonstrations\n(colour: face pushed first)")
    ax.legend(fontsize=7, loc="lower left")

    modes = Counter(demo.attrs["mode"] for demo in demos)
    x = np.arange(len(FACES))
    for offset, turn in ((-0.2, "cw"), (0.2, "ccw")):
        counts = [modes.get(f"{face}/{turn}", 0) for face in FACES]
        bars.bar(x + offset, counts, width=0.4, label=f"block turns {turn}")
    bars.set_xticks(x, [f.replace("_", " ") for f in FACES], rotation=20)
    bars.set(ylabel="demonstrations", title=f"modes of all {len(demos)} demonstrations")
    bars.legend(fontsize=8)
    fig.tight_layout()
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
