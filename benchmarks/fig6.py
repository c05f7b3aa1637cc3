"""Fig. 6 of the HINT paper under each noise law: docs/results/fig6.md from leaderboard records.

The paper's text draws the observation noise from N(0, σ²); the authors' code from
σ·U[0, 1) per normalised dimension (mean σ/2). The suites ``fig6_laws_pusht`` and
``fig6_laws_can`` train every σ > 0 model under each law and evaluate four arms of it
(replica, train-only, and the two shifted train-only arms that isolate the law's bias).
This script reads their records and writes one page: per task a figure laid out like the
paper's (score vs σ, replica vs train-only, one panel per law), the tables with standard
errors, the paired differences replica − train-only, the paper's best-3-checkpoints
protocol, and the compute spent.

Standard errors. A run's episodes are cells (training seed, sampler seed, initial state).
``SE (cells)`` is the standard deviation of the cells over the square root of their
number; ``SE (seeds)`` is that of the per-training-seed means over the square root of the
number of training seeds, which also carries the spread between trained models. A
difference is called a finding (``yes`` in the tables) only when it exceeds two of the
larger of the two.

Usage::

    python benchmarks/fig6.py                     # every suite of --suites with records
    python benchmarks/fig6.py --out /tmp/fig6.md  # somewhere else
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hint_envs._io import atomic_write_bytes
from hint_envs.core import NOISE_LAWS

REPO = Path(__file__).resolve().parents[1]
#: the arms of a noised model and how the page names them
ARMS = {
    "hint": "replica",
    "ddpm_train_noise": "train-only",
    "ddpm_train_noise_shifted": "train-only, inputs −σ/2",
    "ddpm_train_noise_debiased": "train-only, inputs +σ/2",
}
LAW_TEXT = {
    "gaussian": "Gaussian N(0, σ²) (the paper's text)",
    "uniform": "uniform σ·U[0, 1) (the authors' code)",
    "uniform_centered": "centred uniform σ·U[−½, ½) (the control)",
}


@dataclass
class Args:
    suites: tuple[str, ...] = ("fig6_laws_pusht", "fig6_laws_can")
    """suites whose records the page is made from (each under --results/<suite>/records)"""
    results: str = "benchmarks/results"
    """folder of the suites' output folders (the leaderboard's --out)"""
    findings: str = "benchmarks/results/fig6_findings.md"
    """hand-written verdicts placed at the top of the page (Markdown; skipped if absent)"""
    out: str = "docs/results/fig6.md"
    """the page; its figures go to img/ beside it"""


# ----------------------------------------------------------------------------- data
def read_records(folder: Path) -> list[dict[str, Any]]:
    """Every record under ``folder/records`` (unreadable files skipped)."""
    records = []
    for path in sorted((folder / "records").glob("**/*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            print(f"fig6: skipping unreadable record {path}", file=sys.stderr)
    return records


def _key(record: dict[str, Any]) -> tuple[str, float, str]:
    c = record["config"]
    law = c.get("noise_law", "gaussian") if c["sigma"] > 0 else "none"
    return c["policy"], float(c["sigma"]), law


def cells(record: dict[str, Any], metric: str) -> dict[tuple[int, int], float]:
    """``{(sample_seed, state_seed): value}`` of one run's episodes."""
    out = {}
    for episode in record["episodes"]:
        value = episode[metric] if metric != "success" else float(episode["success"])
        out[(episode.get("sample_seed", 0), episode["state_seed"])] = float(value)
    return out


@dataclass
class Stat:
    """A mean with its two standard errors (see the module docstring)."""

    mean: float
    se_cells: float
    se_seeds: float
    n_seeds: int
    n_cells: int

    @property
    def se(self) -> float:
        """The larger standard error: the one a finding must clear twice."""
        return max(self.se_cells, self.se_seeds)

    def text(self, digits: int = 3) -> str:
        return f"{self.mean:.{digits}f} ± {self.se:.{digits}f}"


def stat(by_seed: dict[int, list[float]]) -> Stat | None:
    """The statistics of cells grouped by training seed (None if there are none)."""
    by_seed = {s: v for s, v in by_seed.items() if v}
    if not by_seed:
        return None
    values = np.concatenate([np.asarray(v, dtype=float) for v in by_seed.values()])
    means = np.array([np.mean(v) for v in by_seed.values()])
    n = len(means)
    se_seeds = float(np.std(means, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    se_cells = float(np.std(values, ddof=1) / np.sqrt(values.size)) if values.size > 1 else 0.0
    return Stat(float(values.mean()), se_cells, se_seeds, n, int(values.size))


def arm_stat(records: list[dict[str, Any]], metric: str) -> Stat | None:
    """An arm's cells over its runs (one run per training seed)."""
    return stat({r["config"]["seed"]: list(cells(r, metric).values()) for r in records})


def paired(first: list[dict[str, Any]], second: list[dict[str, Any]], metric: str) -> Stat | None:
    """``first − second`` cell by cell (same training seed, sampler seed and start)."""
    other = {r["config"]["seed"]: cells(r, metric) for r in second}
    by_seed: dict[int, list[float]] = {}
    for record in first:
        seed = record["config"]["seed"]
        if seed not in other:
            continue
        mine = cells(record, metric)
        by_seed[seed] = [mine[k] - other[seed][k] for k in mine if k in other[seed]]
    return stat(by_seed)


def best_of_checkpoints(record: dict[str, Any], metric: str, k: int = 3) -> list[float] | None:
    """A run's checkpoint scores and the final model's (first sampler seed), or None when
    the run kept no checkpoints."""
    if not record.get("checkpoints"):
        return None
    scores = [c["metrics"][metric]["mean"] for c in record["checkpoints"]]
    final = record.get("by_sample_seed", [{"metrics": record["metrics"]}])[0]["metrics"]
    return [*scores, final[metric]["mean"]]


def _unpaired(first: Stat | None, second: Stat | None) -> Stat | None:
    """``first − second`` of two independent means: the errors add in quadrature."""
    if first is None or second is None:
        return None
    return Stat(
        first.mean - second.mean,
        float(np.hypot(first.se_cells, second.se_cells)),
        float(np.hypot(first.se_seeds, second.se_seeds)),
        min(first.n_seeds, second.n_seeds),
        first.n_cells + second.n_cells,
    )


# ----------------------------------------------------------------------------- page
def _finding(s: Stat | None) -> str:
    if s is None:
        return "–"
    if s.n_seeds < 2:
        return "– (one training seed)"
    return "yes" if abs(s.mean) > 2 * s.se else "no (within noise)"


def task_section(
    name: str,
    records: list[dict[str, Any]],
    metric: str,
    img: Path,
    stem: str,
    wall_minutes: float | None = None,
) -> list[str]:
    """One task's figure, tables, protocol and compute, as Markdown lines."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        groups[_key(record)].append(record)
    env_id = records[0]["config"]["env_id"]
    laws = [law for law in NOISE_LAWS if any(k[2] == law for k in groups)]
    sigmas = sorted({k[1] for k in groups if k[1] > 0})
    clean = groups.get(("hint", 0.0, "none"), [])
    clean_stat = arm_stat(clean, metric)
    column = "mean max coverage" if metric == "max_reward" else metric
    seeds = sorted({r["config"]["seed"] for r in records})
    sample_seeds = {len(r.get("by_sample_seed", [None])) for r in records}
    episodes = {len(r["config"]["eval"]["seeds"]) if "seeds" in r["config"]["eval"] else
                r["config"]["eval"]["episodes"] for r in records}  # fmt: skip
    lines = [
        f"## {name}",
        "",
        f"`{env_id}`, {records[0]['config']['num_demos']} demonstrations; "
        f"{len(seeds)} training seeds × {max(sample_seeds)} sampler seed(s) × "
        f"{max(episodes)} test episodes per arm (metric: {column}). Values are means ± the "
        "larger standard error (module docstring of `benchmarks/fig6.py`).",
        "",
    ]
    figure = _plot(name, groups, laws, sigmas, metric, clean_stat, img / f"{stem}.png")
    if figure is not None:
        lines += [f"![Fig. 6 on {name}, per noise law](img/{figure.name})", ""]

    lines += [
        f"| noise law | σ | {' | '.join(ARMS.values())} | replica − train-only | finding "
        "| replica − no noise | finding |",
        "|---|---|" + "---|" * (len(ARMS) + 4),
    ]
    if clean_stat is not None:
        cells_text = " | ".join([clean_stat.text()] + ["–"] * (len(ARMS) - 1))
        lines.append(f"| none | 0 | {cells_text} | – | – | – | – |")
    for law in laws:
        for sigma in sigmas:
            arms = {p: arm_stat(groups.get((p, sigma, law), []), metric) for p in ARMS}
            if all(v is None for v in arms.values()):
                continue
            diff = paired(
                groups.get(("hint", sigma, law), []),
                groups.get(("ddpm_train_noise", sigma, law), []),
                metric,
            )
            row = [s.text() if s is not None else "–" for s in arms.values()]
            cost = _unpaired(arms["hint"], clean_stat)  # other models: not paired
            lines.append(
                f"| {law} | {sigma:g} | {' | '.join(row)} | "
                f"{diff.text() if diff else '–'} | {_finding(diff)} | "
                f"{cost.text() if cost else '–'} | {_finding(cost)} |"
            )
    lines += [""]

    # the bias, isolated: each train-only arm against its shifted twin, and the laws' gaps
    rows = []
    for law, shifted in (("gaussian", "ddpm_train_noise_shifted"),
                         ("uniform", "ddpm_train_noise_debiased")):  # fmt: skip
        for sigma in sigmas:
            moved = groups.get((shifted, sigma, law), [])
            if not moved:
                continue
            diff = paired(moved, groups.get(("ddpm_train_noise", sigma, law), []), metric)
            rows.append(
                f"| {law} | {sigma:g} | {ARMS[shifted]} − train-only | "
                f"{diff.text() if diff else '–'} | {_finding(diff)} |"
            )
    if rows:
        lines += [
            "The bias isolated: the same model, clean inputs moved by a constant (paired by "
            "training seed, sampler seed and start):",
            "",
            "| model's law | σ | difference | value | finding |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]

    # the paper's protocol: best 3 checkpoints
    protocol = []
    for law in laws:
        for sigma in sigmas:
            hint = groups.get(("hint", sigma, law), [])
            train_only = {
                r["config"]["seed"]: r for r in groups.get(("ddpm_train_noise", sigma, law), [])
            }
            own, chosen, finals = [], [], []
            for record in hint:
                replica_scores = best_of_checkpoints(record, metric)
                other = train_only.get(record["config"]["seed"])
                other_scores = best_of_checkpoints(other, metric) if other else None
                if replica_scores is None or other_scores is None:
                    continue
                top = np.argsort(replica_scores)[::-1][:3]  # kept by the replica arm's score
                own.append(
                    (np.mean(sorted(replica_scores)[-3:]), np.mean(sorted(other_scores)[-3:]))
                )
                chosen.append(np.mean([other_scores[i] for i in top]))
                finals.append((replica_scores[-1], other_scores[-1]))
            if own:
                own_arr, fin = np.array(own), np.array(finals)
                protocol.append(
                    f"| {law} | {sigma:g} | {fin[:, 0].mean():.3f} | {fin[:, 1].mean():.3f} | "
                    f"{own_arr[:, 0].mean():.3f} | {own_arr[:, 1].mean():.3f} | "
                    f"{np.mean(chosen):.3f} | {len(own)} |"
                )
    if protocol:
        steps = [c["step"] for c in next(r for r in records if r.get("checkpoints"))["checkpoints"]]
        lines += [
            f"The paper's protocol: each arm evaluated at steps {', '.join(map(str, steps))} "
            "and at the end (first sampler seed); the mean of each run's best 3 of these, "
            "averaged over training seeds. It selects on the test seeds: an optimistic "
            "figure, shown because the paper reports it.",
            "",
            "| noise law | σ | final: replica | final: train-only | best 3: replica | "
            "best 3: train-only | train-only at replica's best 3 | seeds |",
            "|---|---|---|---|---|---|---|---|",
            *protocol,
            "",
        ]

    train_min = sum(r["timing"]["train_s"] for r in _one_per_model(records)) / 60
    eval_min = sum(_eval_seconds(r) for r in _unique_evaluations(records)) / 60
    cpu = {r["environment"].get("cpu", r["environment"]["platform"]) for r in records}
    lines += [
        f"Compute: {train_min:.0f} min training ({len(_one_per_model(records))} models, "
        f"checkpoint evaluations included) and {eval_min:.0f} min final evaluation, one "
        f"thread each, on {', '.join(sorted(cpu))}"
        + (f"; {wall_minutes:.0f} min of wall time on 2 workers." if wall_minutes else "."),
        "",
    ]
    return lines


def wall_minutes(folder: Path) -> float | None:
    """The leaderboard sessions' wall time in ``folder/sessions.jsonl`` (None: none logged)."""
    path = folder / "sessions.jsonl"
    if not path.exists():
        return None
    total = 0.0
    for line in path.read_text().splitlines():
        try:
            total += float(json.loads(line)["wall_s"])
        except (ValueError, KeyError, TypeError):
            continue
    return total / 60 or None


def _one_per_model(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for r in records:
        key = (r["config"]["seed"], r["config"]["sigma"] > 0 and r["config"].get("noise_law"),
               r["config"]["train_sigma"])  # fmt: skip
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _unique_evaluations(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen, out = set(), []
    for r in records:
        c = r["config"]
        key = (
            c["seed"],
            c.get("noise_law"),
            c["train_sigma"],
            c["test_sigma"],
            c.get("test_shift", 0),
        )
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def _eval_seconds(record: dict[str, Any]) -> float:
    return float(record["timing"]["eval_s"])


def _plot(
    name: str,
    groups: dict[tuple, list[dict[str, Any]]],
    laws: list[str],
    sigmas: list[float],
    metric: str,
    clean: Stat | None,
    path: Path,
) -> Path | None:
    """Score vs σ, replica vs train-only, one panel per law (the paper's layout)."""
    if not laws:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(laws), figsize=(4.2 * len(laws), 3.6), sharey=True, squeeze=False
    )
    styles = {
        "hint": ("o-", "C0"),
        "ddpm_train_noise": ("s-", "C1"),
        "ddpm_train_noise_shifted": ("v", "C2"),
        "ddpm_train_noise_debiased": ("^", "C3"),
    }
    for ax, law in zip(axes[0], laws, strict=True):
        for policy, (style, colour) in styles.items():
            points = []
            if clean is not None and policy in ("hint", "ddpm_train_noise"):
                points.append((0.0, clean))
            nudge = 1.0 if policy in ("hint", "ddpm_train_noise") else 1.03  # beside, not on
            for sigma in sigmas:
                s = arm_stat(groups.get((policy, sigma, law), []), metric)
                if s is not None:
                    points.append((sigma * nudge, s))
            if len(points) < (2 if policy in ("hint", "ddpm_train_noise") else 1):
                continue
            ax.errorbar(
                [p[0] for p in points],
                [p[1].mean for p in points],
                yerr=[2 * p[1].se for p in points],
                fmt=style,
                color=colour,
                capsize=3,
                label=ARMS[policy],
            )
        ax.set_title(f"{name}: {LAW_TEXT[law]}", fontsize=9)
        ax.set_xlabel("σ (normalised units)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("mean max coverage" if metric == "max_reward" else metric)
    fig.suptitle("error bars: ± 2 standard errors", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_page(args: Args) -> Path:
    """Write ``args.out`` from the records; returns its path."""
    out = (REPO / args.out).resolve()
    img = out.parent / "img"
    lines = [
        "# Fig. 6 under the paper's noise law and the authors' code's",
        "",
        "<!-- generated by benchmarks/fig6.py from the records in benchmarks/results/; "
        "the verdicts come from benchmarks/results/fig6_findings.md -->",
        "",
    ]
    findings = REPO / args.findings
    if findings.exists():
        lines += [findings.read_text().strip(), ""]
    for suite in args.suites:
        records = read_records(REPO / args.results / suite)
        if not records:
            lines += [f"## {suite}", "", "No records yet: run the suite (docs/benchmarks.md).", ""]
            continue
        env_id = records[0]["config"]["env_id"]
        metric = "max_reward" if "PushT" in env_id else "success"
        name = env_id.split("/")[-1].removesuffix("-v0").removeprefix("Robomimic")
        wall = wall_minutes(REPO / args.results / suite)
        lines += task_section(name, records, metric, img, suite, wall)
        if metric == "max_reward":
            lines += task_section(f"{name} (success)", records, "success", img, f"{suite}_success")
    atomic_write_bytes(out, "\n".join(lines).encode())
    return out


def main() -> int:
    from bench_cli import parse_dataclass_args

    args = parse_dataclass_args(Args, __doc__)
    print(f"wrote {write_page(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
