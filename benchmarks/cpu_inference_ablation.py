"""What each piece of the CPU inference model buys: one U-Net denoiser call, per variant.

Times ``denoise(sample, film)`` of the HINT paper's U-Net (down dims 64/128/256, kernel 5,
``horizon=16`` controllers of 20 floats, observation chunk 2 x 6; untrained weights) at
each batch size, with the variants interleaved (each round times every variant once, so a
shared machine's drifting speed slows all alike), and reports the median milliseconds per
call and the speed-up over the plain model. Variants:

* ``plain``: the library's modules (``nn.Conv1d`` ... on ``(B, C, T)``).
* ``time_major``: :func:`policies.cpu_inference.cpu_inference_model` with im2col
  convolutions at every batch and ``nn.Mish`` put back: the time-major layout (torch's
  group norm on a ``(B, C, T)`` view) with one GEMM per convolution.
* ``time_major+taps``: plus one GEMM per kernel tap from batch 8
  (:meth:`~policies.cpu_inference.TimeMajorConv1d.taps`).
* ``time_major+mish``: plus :class:`~policies.cpu_inference.ClosedFormMish`.
* ``cpu_inference_model``: both (what ``compile_sampler()`` compiles on CPU).
* ``cpu_inference_model+group_norm``: plus a group norm written for ``(T, B, C)`` (two
  passes of sums; not in the library: it bought nothing compiled).
* with ``--old``, the kernels dropped at commit 22b1f10 (``git show`` of its
  ``policies/networks.py``, which computes the same function with the same parameter
  names), each with its weight layouts cached: ``old_im2col`` (its time-major im2col, group
  norm and closed-form Mish), ``old_taps`` (one GEMM per kernel tap from batch 8) and
  ``old_winograd`` (Winograd F(4, k) from batch 8, the full old path).

Usage::

    python benchmarks/cpu_inference_ablation.py --threads 1 --compile
    python benchmarks/cpu_inference_ablation.py --threads 1 --compile --old

With ``--compile`` each variant is ``torch.compile(..., dynamic=False)`` of its ``denoise``
(compile time not timed; the time-major graphs take from seconds to two minutes each on 2
cores at batch 50). Without it, eager calls under ``torch.inference_mode``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from policies.cpu_inference import (
    ClosedFormMish,
    TimeMajorConv1d,
    TimeMajorGroupNorm,
    cpu_inference_model,
)
from policies.networks import ConditionalUnet1D

OLD_COMMIT = "22b1f10"


class Im2colConv1d(TimeMajorConv1d):
    """:class:`TimeMajorConv1d` with its im2col GEMM at every batch (no per-tap GEMMs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.im2col(x)


class HandGroupNorm(nn.GroupNorm):
    """Group norm written for time-major ``(T, B, C)``: statistics per sample and group
    over time and the group's channels (mean, then centred squares), one multiply-add."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length, batch, channels = x.shape
        groups = self.num_groups
        xg = x.reshape(length, batch, groups, channels // groups)
        mean = xg.mean(dim=(0, 3), keepdim=True)
        centred = xg - mean
        var = centred.square().mean(dim=(0, 3), keepdim=True)
        scale = torch.rsqrt(var + self.eps) * self.weight.view(groups, -1)
        out = torch.addcmul(self.bias.view(groups, -1), centred, scale)
        return out.view(length, batch, channels)


def swapped(model: nn.Module, swaps: dict[type, type]) -> nn.Module:
    """``cpu_inference_model(model)`` with some module classes put back or replaced."""
    fast = cpu_inference_model(model)
    for module in fast.modules():
        if type(module) in swaps:
            module.__class__ = swaps[type(module)]
    return fast


def old_networks(commit: str):
    """``policies/networks.py`` of ``commit``, imported as a module of its own."""
    source = subprocess.run(
        ["git", "show", f"{commit}:policies/networks.py"],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_networks.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_networks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def old_model(model: ConditionalUnet1D, commit: str, taps: bool, winograd: bool) -> nn.Module:
    """The old code's U-Net with ``model``'s weights, its caches built."""
    old = old_networks(commit)
    if not taps:
        old.TAPS_MIN_BATCH = 10**9  # im2col at every batch (and torch's group norm below it)
    if not winograd:
        old._Conv1d._winograd_kernel = lambda self: False
    net = old.ConditionalUnet1D(20, 12, 16).eval()
    net.load_state_dict(model.state_dict())
    with torch.inference_mode():
        net.prepare_inference()
    return net


def variants(model: ConditionalUnet1D, old: bool) -> dict[str, Callable]:
    """Variant name -> ``denoise(sample, film)``."""
    no_taps, plain_mish = {TimeMajorConv1d: Im2colConv1d}, {ClosedFormMish: nn.Mish}
    out = {
        "plain": model.denoise,
        "time_major": swapped(model, no_taps | plain_mish).denoise,
        "time_major+taps": swapped(model, plain_mish).denoise,
        "time_major+mish": swapped(model, no_taps).denoise,
        "cpu_inference_model": cpu_inference_model(model).denoise,
        "cpu_inference_model+group_norm": swapped(
            model, {TimeMajorGroupNorm: HandGroupNorm}
        ).denoise,
    }
    if old:
        out["old_im2col"] = old_model(model, OLD_COMMIT, taps=False, winograd=False).denoise
        out["old_taps"] = old_model(model, OLD_COMMIT, taps=True, winograd=False).denoise
        out["old_winograd"] = old_model(model, OLD_COMMIT, taps=True, winograd=True).denoise
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 50], help="batch sizes")
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds (median)")
    parser.add_argument("--compile", action="store_true", help="torch.compile each variant")
    parser.add_argument("--old", action="store_true", help=f"also the kernels of {OLD_COMMIT}")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ConditionalUnet1D(20, 12, 16, down_dims=(64, 128, 256), kernel_size=5).eval()
    calls = variants(model, args.old)
    if args.compile:  # the variants share denoise's code: one graph each per batch size
        torch._dynamo.config.recompile_limit = 4 * len(calls) * len(args.batches)
        calls = {name: torch.compile(call, dynamic=False) for name, call in calls.items()}
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"threads {args.threads}, compile {args.compile}, load average {load}")
    print("| batch | variant | ms per call | plain / variant |")
    print("|---|---|---|---|")
    for batch in args.batches:
        g = torch.Generator().manual_seed(batch)
        x, cond = torch.randn(batch, 16, 20, generator=g), torch.randn(batch, 12, generator=g)
        t = torch.randint(0, 100, (batch,), generator=g)
        with torch.inference_mode():
            film = model.obs_films(cond) + model.step_films(t)
            expected = model.denoise(x, film)
            for call in calls.values():  # compiles, and checks the function
                torch.testing.assert_close(call(x, film), expected, atol=2e-5, rtol=1e-4)
            repeat = max(1, 50 // batch)
            times: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(args.rounds):
                for name, call in calls.items():
                    start = time.perf_counter()
                    for _ in range(repeat):
                        call(x, film)
                    times[name].append((time.perf_counter() - start) / repeat * 1e3)
        plain = statistics.median(times["plain"])
        for name, seconds in times.items():
            ms = statistics.median(seconds)
            print(f"| {batch} | {name} | {ms:.2f} | {plain / ms:.2f}x |", flush=True)
    print(f"load after: {Path('/proc/loadavg').read_text().split()[:3]}", file=sys.stderr)


if __name__ == "__main__":
    main()
