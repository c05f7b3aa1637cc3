"""Draw the Robomimic reference demonstrations: end-effector paths by mode, and lengths.

One column per task (Lift, Can, Square), from the 200-demonstration files of
docs/results/robomimic_expert.md (too large to commit; ``hint-collect`` writes them into
``runs/robomimic_data/`` in about 10 minutes). Top: the
end-effector path of the first ``--paths`` demonstrations seen from above (x, y: the
robot's base is at x = -0.56 m), coloured by the demonstration's mode. Bottom: the
distribution of demonstration lengths per mode.

Usage::

    python benchmarks/plot_robomimic_demos.py           # docs/img/robomimic_demos.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TASKS = ("Lift", "Can", "Square")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", default="runs/robomimic_data", help="folder of robomimic_<task>_200.hdf5"
    )
    parser.add_argument("--paths", type=int, default=40, help="demonstrations drawn per task")
    parser.add_argument("--out", default="docs/img/robomimic_demos.png")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hint_envs.data import read_demonstrations

    fig, axes = plt.subplots(2, len(TASKS), figsize=(4.2 * len(TASKS), 7.0))
    for column, task in enumerate(TASKS):
        path = REPO / args.data / f"robomimic_{task.lower()}_200.hdf5"
        if not path.exists():
            parser.error(f"{path} is missing; docs/results/robomimic_expert.md collects it")
        demos = read_demonstrations(path).demos
        modes = sorted({d.attrs["mode"] for d in demos})
        colours = {m: plt.cm.tab10(i % 10) for i, m in enumerate(modes)}
        top, bottom = axes[0, column], axes[1, column]
        for demo in demos[: args.paths]:
            p = demo.observations[:, :3]
            top.plot(p[:, 0], p[:, 1], lw=0.8, alpha=0.7, color=colours[demo.attrs["mode"]])
        for mode in modes:
            top.plot([], [], color=colours[mode], label=mode)
        top.set(xlabel="x (m)", ylabel="y (m)", title=f"{task}: end-effector paths (top view)")
        top.set_aspect("equal", adjustable="datalim")
        top.legend(fontsize=7, loc="best")
        lengths = [[len(d) for d in demos if d.attrs["mode"] == m] for m in modes]
        bottom.hist(lengths, bins=20, stacked=True, color=[colours[m] for m in modes], label=modes)
        mean = np.mean([len(d) for d in demos])
        bottom.set(
            xlabel="steps (20 Hz)",
            ylabel="demonstrations",
            title=f"{task}: {len(demos)} demos, mean {mean:.0f} steps",
        )
        bottom.legend(fontsize=7)
    fig.tight_layout()
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
