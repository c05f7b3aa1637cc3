"""The leaderboard's report: a Markdown table per environment and Fig. 5 / 6 style plots.

Everything here is computed from the JSON records alone (:func:`load_records`), so the
report can be regenerated at any time (``leaderboard.py --report-only``) and always shows
exactly what the records hold.

Aggregation: a run's value of a metric is its mean over the run's evaluation episodes
(``record["metrics"][name]["mean"]``; for the imitation loss, its mean over time). A row
of the table is one (policy, sigma, N); it shows the mean ± std of the runs' values over
seeds (population std, ``ddof = 0``, as in the evaluation's own summaries) and the number
of seeds.

Plots (one panel per environment and demonstration count N, the suite's ``metric``
against sigma, error bars ± std over seeds):

* ``<stem>_fig5.png`` — gains vs no gains (``hint`` vs ``ddpm_no_gains``), as Fig. 5 of
  the HINT paper;
* ``<stem>_fig6.png`` — replica vs deconvolution (``hint`` vs ``ddpm_train_noise``), as
  Fig. 6.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hint_envs._io import atomic_write_bytes
from hint_envs.core import NOISE_LAWS

from .registry import POLICIES
from .runs import read_record, read_sessions, record_file
from .suite import REPO_ROOT, Job, Suite

__all__ = ["FIGURES", "Row", "aggregate", "load_records", "write_report"]

logger = logging.getLogger(__name__)

#: Columns of the table: metric name -> header.
COLUMNS = {
    "success": "success",
    "max_reward": "mean max coverage (max reward)",
    "trajectory_error": "trajectory error",
    "imitation_loss": "imitation loss",
    "return": "return",
}
#: Figure name -> (title, [(policy, label)]): the policies each figure compares.
FIGURES = {
    "fig5": (
        "Fig. 5 style: gains vs no gains",
        [("hint", "HINT: (ū, x̄, K) chunks"), ("ddpm_no_gains", "no gains: ū chunks")],
    ),
    "fig6": (
        "Fig. 6 style: replica vs deconvolution",
        [("hint", "replica (noise at test time)"), ("ddpm_train_noise", "deconvolution")],
    ),
}
#: Figure name -> [(policy, label)]: policies that ignore σ, drawn as horizontal lines.
REFERENCE_LINES = {"fig6": [("ddpm_no_noise", "no noise (σ = 0)")]}


def load_records(jobs: Iterable[Job], out_dir: str | Path) -> list[dict[str, Any]]:
    """The records of the jobs' runs that exist under ``out_dir`` (missing ones skipped)."""
    records = []
    for job in jobs:
        for run in job.runs:
            record = read_record(record_file(out_dir, run))
            if record is not None:
                records.append(record)
    return records


def run_value(record: dict[str, Any], metric: str) -> float | None:
    """A run's value of ``metric``: its mean over episodes (None if not measured)."""
    value = record["metrics"].get(metric)
    if value is None or value.get("mean") is None:
        return None
    return float(value["mean"])


@dataclass
class Row:
    """One (env, policy, sigma, noise law, N) of the leaderboard: values over seeds."""

    env_id: str
    policy: str
    sigma: float
    noise_law: str
    num_demos: int
    seeds: list[int]
    values: dict[str, list[float]]
    train_s: list[float]
    eval_s: list[float]
    latency_s: list[float]

    def stat(self, metric: str) -> tuple[float, float, int] | None:
        """``(mean, std, count)`` of ``metric`` over seeds, or None if never measured."""
        values = self.values.get(metric, [])
        if not values:
            return None
        return float(np.mean(values)), float(np.std(values)), len(values)


def aggregate(records: Sequence[dict[str, Any]]) -> list[Row]:
    """Group records into rows, ordered by env, N, sigma and the registry's policy order."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        c = record["config"]
        law = c.get("noise_law", "gaussian")
        groups[(c["env_id"], c["policy"], c["sigma"], law, c["num_demos"])].append(record)
    order = {name: i for i, name in enumerate(POLICIES)}
    rows = []
    for (env_id, policy, sigma, law, n), group in groups.items():
        group = sorted(group, key=lambda r: r["config"]["seed"])
        values = {}
        for metric in COLUMNS:
            measured = [run_value(r, metric) for r in group]
            values[metric] = [v for v in measured if v is not None]
        rows.append(
            Row(
                env_id=env_id,
                policy=policy,
                sigma=sigma,
                noise_law=law,
                num_demos=n,
                seeds=[r["config"]["seed"] for r in group],
                values=values,
                train_s=[r["timing"]["train_s"] for r in group],
                eval_s=[r["timing"]["eval_s"] for r in group],
                latency_s=[r["timing"]["sampling_latency"]["median_s"] for r in group],
            )
        )
    laws = {law: i for i, law in enumerate(NOISE_LAWS)}
    rows.sort(
        key=lambda r: (
            r.env_id,
            r.num_demos,
            r.sigma,
            laws.get(r.noise_law, len(laws)),
            order.get(r.policy, len(order)),
        )
    )
    return rows


def _several_laws(rows: list[Row]) -> bool:
    return any(row.noise_law != "gaussian" for row in rows)


def _cell(stat: tuple[float, float, int] | None) -> str:
    if stat is None:
        return "–"
    mean, std, _ = stat
    return f"{mean:.3f} ± {std:.3f}"


#: Columns shown only for an env whose plotted metric they are (the quadrotor's largest
#: step reward, a negative cost, says nothing; PushT's is Diffusion Policy's score).
ONLY_AS_METRIC = ("max_reward",)


def _table(rows: list[Row], metric: str) -> list[str]:
    columns = [metric] + [
        m
        for m in COLUMNS
        if m != metric and m not in ONLY_AS_METRIC and any(r.values[m] for r in rows)
    ]
    laws = _several_laws(rows)
    header = ["policy", "σ", *(["noise"] if laws else []), "N", *(COLUMNS[m] for m in columns)]
    header += ["seeds", "train (s)", "eval (s)", "latency (ms)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        sigma = f"{row.sigma:g}" if POLICIES[row.policy].uses_sigma else "–"
        cells = [f"`{row.policy}`", sigma]
        if laws:
            cells.append(row.noise_law if row.sigma > 0 else "–")
        cells.append(str(row.num_demos))
        cells += [_cell(row.stat(m)) for m in columns]
        cells += [
            str(len(row.seeds)),
            f"{np.mean(row.train_s):.0f}",
            f"{np.mean(row.eval_s):.0f}",
            f"{1000 * np.median(row.latency_s):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _plot(rows: list[Row], metrics: dict[str, str], figure: str, path: Path) -> Path | None:
    """Draw ``figure`` (a key of :data:`FIGURES`) into ``path``; None if nothing to draw."""
    title, curves = FIGURES[figure]
    names = [policy for policy, _ in curves]
    # one panel per (env, N) and, in a suite with several noise laws, per law; a run
    # without noise (sigma 0) belongs to every law's panel
    laws = sorted({r.noise_law for r in rows if r.sigma > 0}, key=NOISE_LAWS.index) or ["gaussian"]

    def in_panel(r: Row, panel: tuple) -> bool:
        env_id, n, law = panel
        return (r.env_id, r.num_demos) == (env_id, n) and (r.noise_law == law or r.sigma == 0)

    panels = sorted(
        {
            (r.env_id, r.num_demos, law)
            for r in rows
            for law in laws
            if r.policy in names and r.env_id in metrics
        }
    )
    # a panel is worth drawing only if every compared policy has a point in it
    panels = [
        p for p in panels if all(any(r.policy == n and in_panel(r, p) for r in rows) for n in names)
    ]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = min(len(panels), 4)
    height = -(-len(panels) // width)
    one_metric = len({metrics[panel[0]] for panel in panels}) == 1
    fig, axes = plt.subplots(
        height,
        width,
        figsize=(max(3.6 * width, 5.0), 3.0 * height + 0.6),
        squeeze=False,
        sharey=one_metric,
    )
    for ax, panel in zip(axes.flat, panels, strict=False):
        env_id, n, law = panel
        metric = metrics[env_id]
        for (policy, label), marker in zip(curves, ("o", "s"), strict=True):
            points = sorted(
                (r.sigma, r.stat(metric))
                for r in rows
                if in_panel(r, panel) and r.policy == policy
                if r.stat(metric) is not None
            )
            if not points:
                continue
            x = [p[0] for p in points]
            y = [p[1][0] for p in points]
            err = [p[1][1] for p in points]
            ax.errorbar(x, y, yerr=err, marker=marker, capsize=3, label=label)
        for policy, label in REFERENCE_LINES.get(figure, []):
            stats = [
                r.stat(metric)
                for r in rows
                if (r.env_id, r.num_demos, r.policy) == (env_id, n, policy)
            ]
            for stat in filter(None, stats):
                ax.axhline(stat[0], color="grey", ls="--", lw=1, label=label)
        noise = f", {law} noise" if len(laws) > 1 or law != "gaussian" else ""
        ax.set_title(f"{env_id.split('/')[-1]}, N = {n}{noise}", fontsize=10)
        ax.set_xlabel("σ (normalised units)")
        ax.set_ylabel(COLUMNS.get(metric, metric))
        if metric == "success":
            ax.set_ylim(-0.05, 1.05)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    for ax in list(axes.flat)[: len(panels)]:
        ax.legend(fontsize=7)
    fig.suptitle(f"{title}\n(mean ± std over seeds)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(
    suite: Suite,
    records: Sequence[dict[str, Any]],
    total_runs: int,
    report_path: str | Path,
    command: str,
    out_dir: str | Path | None = None,
) -> list[Path]:
    """Write the Markdown leaderboard and its plots.

    Args:
        suite: the suite the records belong to.
        records: its records (:func:`load_records`).
        total_runs: how many runs the suite has (to say how many are missing).
        report_path: the Markdown file; plots go to ``img/<stem>_fig5.png`` and
            ``img/<stem>_fig6.png`` beside it.
        command: the command that reproduces the report.
        out_dir: the output folder, whose sessions log (wall times) the report summarises.

    Returns:
        the files written (the Markdown first).
    """
    report_path = Path(report_path)
    rows = aggregate(records)
    metrics = {block.env_id: block.metric for block in suite.envs}
    written = []
    images = {}
    for figure in FIGURES:
        image = report_path.parent / "img" / f"{report_path.stem}_{figure}.png"
        if _plot(rows, metrics, figure, image) is not None:
            images[figure] = image
            written.append(image)

    commits = sorted(
        {
            (r.get("provenance", {}).get("commit") or "unknown")[:10]
            + ("+dirty" if r.get("provenance", {}).get("dirty") else "")
            for r in records
        }
    )
    train_total = sum(r["timing"]["train_s"] for r in records)
    eval_total = sum(r["timing"]["eval_s"] for r in records)
    versions = records[0]["environment"]["versions"] if records else {}
    sessions = read_sessions(out_dir) if out_dir is not None else []
    wall = ""
    if sessions:
        last = sessions[-1]
        wall = (
            f"; wall time {sum(s['wall_s'] for s in sessions) / 60:.1f} min over "
            f"{len(sessions)} session(s), the last computing {last['runs']} runs in "
            f"{last['wall_s'] / 60:.1f} min on {last['host']} ({last['where']})"
        )
    lines = [
        f"# Leaderboard: `{suite.name}` suite",
        "",
        "<!-- generated by benchmarks/leaderboard.py from its JSON records; do not edit -->",
        "",
        f"{suite.description}".strip(),
        "",
        f"- Suite: `{_relative(suite.path)}`; reproduce with `{command}`.",
        f"- Runs: {len(records)} of {total_runs} finished"
        + ("." if len(records) == total_runs else " (the table shows the finished ones)."),
        f"- Code: commit {', '.join(commits) if commits else '–'}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        f"- Compute: {train_total / 60:.1f} min training and {eval_total / 60:.1f} min "
        f"evaluation summed over runs (runs sharing a trained model count it each){wall}.",
        "",
    ]
    if suite.findings:
        lines += ["## What it shows", "", suite.findings, ""]
    lines += [
        "Each row is one (policy, σ, N): mean ± std over seeds (population std) of each run's "
        "mean over its evaluation episodes; σ is the noise level in normalised units, N the "
        "number of expert demonstrations. Times are means per run; latency is the median "
        "wall time of one batched `predict` call.",
        "",
    ]
    by_env: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_env[row.env_id].append(row)
    for block in suite.envs:
        env_rows = by_env.get(block.env_id)
        ev = block.eval
        lines.append(f"## {block.env_id}")
        lines.append("")
        if not env_rows:
            lines += ["No finished runs yet.", ""]
            continue
        lines.append(
            f"Metric `{block.metric}`; {ev.episodes} evaluation initial states "
            f"(seeds {ev.seed_start}–{ev.seed_start + ev.episodes - 1}) × "
            f"{ev.rollouts_per_state} rollout(s) per run; latency for a batch of "
            f"{ev.num_envs} observations."
        )
        lines.append("")
        lines += _table(env_rows, block.metric)
        lines.append("")
    for figure, image in images.items():
        title = FIGURES[figure][0]
        lines += [f"### {title}", "", f"![{title}](img/{image.name})", ""]
    lines.append("## Policies")
    lines.append("")
    used = sorted({row.policy for row in rows}, key=list(POLICIES).index)
    for name in used:
        lines.append(f"- `{name}`: {POLICIES[name].summary}")
    lines.append("")
    report_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(report_path, "\n".join(lines).encode())
    return [report_path, *written]


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)
