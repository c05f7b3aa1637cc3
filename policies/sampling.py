"""Noise schedules from ``diffusers`` and a tight DDPM / DDIM sampling loop.

The schedule (betas, cumulative alphas, inference timesteps) comes from ``diffusers``'
``DDPMScheduler`` / ``DDIMScheduler`` (epsilon or clean-sample prediction, optional
clipping of the predicted clean sample to [-1, 1]). Their per-step update is affine in the
current sample ``x_t``, the network's output ``out`` and fresh noise ``z``::

    x0     = clip(a_t * x_t - b_t * out)              (predicted clean sample)
    x_prev = c0_t * x0 + c1_t * x_t + c2_t * out + s_t * z

With epsilon prediction (``out = eps``), DDPM (ancestral, ``fixed_small`` variance) has
``c2 = 0`` and DDIM (eta = 0) ``c1 = 0``, ``s = 0``. With clean-sample prediction
(``out`` is the unclipped ``x0``) ``a = 0``, ``b = -1``, and DDIM's noise term
``sqrt(1 - abar_prev) * eps`` uses ``eps = (x_t - sqrt(abar_t) out) / sqrt(1 - abar_t)``,
which folds into ``c1`` and ``c2``. :class:`DiffusionSampler` precomputes these
coefficients once, in float64, as Python floats, and runs the update in place on
preallocated buffers, so the only work per denoising step is the network call. It draws
the initial sample and each step's noise from the caller's ``torch.Generator`` in the
same order as ``diffusers``'s own loop (initial sample, then the noise of every step with
``t > 0``), and matches ``scheduler.step`` to float32 rounding (see
``tests/policies/test_ddpm_policy.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from policies.config import PREDICTION_TYPES

__all__ = ["DiffusionSampler", "make_scheduler"]


def make_scheduler(
    kind: str,
    diffusion_steps: int,
    beta_schedule: str,
    clip_sample: bool,
    prediction_type: str = "epsilon",
) -> DDPMScheduler | DDIMScheduler:
    """The ``diffusers`` scheduler Diffusion Policy uses (its default: epsilon prediction).

    Args:
        kind: ``"ddpm"`` or ``"ddim"``.
        diffusion_steps: training diffusion steps.
        beta_schedule: e.g. ``"squaredcos_cap_v2"``.
        clip_sample: clip predicted clean samples to [-1, 1].
        prediction_type: what the network predicts, ``"epsilon"`` (the noise) or
            ``"sample"`` (the clean chunk).
    """
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(
            f"unknown prediction_type {prediction_type!r}; choose one of {PREDICTION_TYPES}"
        )
    common = dict(
        num_train_timesteps=diffusion_steps,
        beta_schedule=beta_schedule,
        clip_sample=clip_sample,
        prediction_type=prediction_type,
    )
    if kind == "ddpm":
        return DDPMScheduler(variance_type="fixed_small", **common)
    if kind == "ddim":
        return DDIMScheduler(set_alpha_to_one=True, steps_offset=0, **common)
    raise ValueError(f"unknown scheduler {kind!r}; choose 'ddpm' or 'ddim'")


@dataclass(frozen=True)
class _Step:
    t: int
    a: float
    b: float
    c0: float
    c1: float
    c2: float
    s: float


class DiffusionSampler:
    """Forward noising for training and reverse sampling for inference.

    Args:
        kind: ``"ddpm"`` or ``"ddim"``.
        diffusion_steps: training diffusion steps.
        inference_steps: denoising steps when sampling.
        beta_schedule: ``diffusers`` beta schedule name.
        clip_sample: clip the predicted clean sample to [-1, 1].
        prediction_type: ``"epsilon"`` (the network predicts the noise) or ``"sample"``
            (the clean sample); :meth:`target` is what it is trained on.

    Attributes:
        scheduler: the ``diffusers`` scheduler (timesteps set to ``inference_steps``).
        alphas_cumprod: ``(diffusion_steps,)`` float32 tensor.
        timesteps: ``(inference_steps,)`` long tensor, descending.
    """

    def __init__(
        self,
        kind: str,
        diffusion_steps: int,
        inference_steps: int,
        beta_schedule: str = "squaredcos_cap_v2",
        clip_sample: bool = True,
        prediction_type: str = "epsilon",
    ):
        if not 1 <= inference_steps <= diffusion_steps:
            raise ValueError(
                f"inference_steps must be in [1, diffusion_steps={diffusion_steps}], "
                f"got {inference_steps}"
            )
        self.kind = kind
        self.clip_sample = clip_sample
        self.prediction_type = prediction_type
        self.scheduler = make_scheduler(
            kind, diffusion_steps, beta_schedule, clip_sample, prediction_type
        )
        self.scheduler.set_timesteps(inference_steps)
        self.alphas_cumprod = self.scheduler.alphas_cumprod.to(torch.float32).clone()
        self.timesteps = self.scheduler.timesteps.to(torch.long).clone()
        self.steps = self._coefficients(diffusion_steps, inference_steps)

    def _coefficients(self, diffusion_steps: int, inference_steps: int) -> list[_Step]:
        abar = self.alphas_cumprod.to(torch.float64).numpy()
        ts = self.timesteps.tolist()
        steps = []
        for i, t in enumerate(ts):
            if self.kind == "ddpm":
                prev = ts[i + 1] if i + 1 < len(ts) else -1
                abar_prev = abar[prev] if prev >= 0 else 1.0
            else:
                prev = t - diffusion_steps // inference_steps
                abar_prev = abar[prev] if prev >= 0 else 1.0  # set_alpha_to_one
            a_t = abar[t]
            a, b = 1.0 / np.sqrt(a_t), np.sqrt(1.0 - a_t) / np.sqrt(a_t)
            if self.kind == "ddpm":
                alpha = a_t / abar_prev
                beta = 1.0 - alpha
                c0 = np.sqrt(abar_prev) * beta / (1.0 - a_t)
                c1 = np.sqrt(alpha) * (1.0 - abar_prev) / (1.0 - a_t)
                c2 = 0.0
                variance = max((1.0 - abar_prev) / (1.0 - a_t) * beta, 1e-20)
                s = float(np.sqrt(variance)) if t > 0 else 0.0
            else:
                c0, c1, c2, s = np.sqrt(abar_prev), 0.0, np.sqrt(1.0 - abar_prev), 0.0
            if self.prediction_type == "sample":  # eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t)
                a, b = 0.0, -1.0
                c1 += c2 / np.sqrt(1.0 - a_t)
                c2 *= -np.sqrt(a_t) / np.sqrt(1.0 - a_t)
            steps.append(_Step(int(t), float(a), float(b), float(c0), float(c1), float(c2), s))
        return steps

    def add_noise(self, clean: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Forward process ``sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps``; ``t`` is ``(B,)``."""
        abar = self.alphas_cumprod.to(clean.device)[t].view(-1, *([1] * (clean.dim() - 1)))
        return abar.sqrt() * clean + (1.0 - abar).sqrt() * noise

    def target(self, clean: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the network is trained to output for ``add_noise(clean, noise, t)``."""
        return noise if self.prediction_type == "epsilon" else clean

    def sample(
        self,
        denoise: Callable[[torch.Tensor, int], torch.Tensor],
        shape: tuple[int, ...],
        generator: torch.Generator,
        dtype: torch.dtype = torch.float32,
    ) -> torch.Tensor:
        """Run the reverse process from ``N(0, I)`` noise.

        Args:
            denoise: ``denoise(x_t, i) -> out``, the network's prediction at the
                ``i``-th inference step (timestep ``self.timesteps[i]``); it must not keep
                references to ``x_t``, which is updated in place.
            shape: sample shape, e.g. ``(B, H, C)``.
            generator: source of the initial sample and the per-step noise; the sample
                lives on its device.

        Returns:
            the sample ``x_0`` of ``shape``, in the normalised space (clipped to [-1, 1]
            when ``clip_sample``).
        """
        x = torch.randn(shape, generator=generator, dtype=dtype, device=generator.device)
        x0 = torch.empty_like(x)
        z = torch.empty_like(x) if any(st.s > 0 for st in self.steps) else None
        for i, st in enumerate(self.steps):
            out = denoise(x, i)
            if st.a:
                torch.mul(x, st.a, out=x0)
                x0.add_(out, alpha=-st.b)
            else:  # clean-sample prediction
                x0.copy_(out)
            if self.clip_sample:
                x0.clamp_(-1.0, 1.0)
            if st.c1:
                x.mul_(st.c1).add_(x0, alpha=st.c0)
            else:
                torch.mul(x0, st.c0, out=x)
            if st.c2:
                x.add_(out, alpha=st.c2)
            if st.s > 0:
                torch.randn(shape, generator=generator, dtype=dtype, out=z)
                x.add_(z, alpha=st.s)
        return x
