"""Denoisers of the DDPM chunking policy: a 1-D temporal conditional U-Net and a residual MLP
(and, for Diffusion-model-augmented BC, an unconditional residual MLP over joint vectors).

Both conditional denoisers predict the noise ``eps`` added to a normalised chunk of
primitive controllers (or, trained with ``prediction_type="sample"``, the clean chunk)::

    sample: (B, H, C)  noisy chunk, H = horizon controllers of C = controller_size floats
    t:      (B,)       diffusion steps (long)
    cond:   (B, G)     flattened normalised observation chunk, G = obs_horizon * d_obs
    ->      (B, H, C)  predicted noise (or clean chunk)

They are written the way Diffusion Policy's ``conditional_unet1d.py`` is (``nn.Conv1d``,
``nn.GroupNorm``, ``nn.Mish`` on ``(B, C, T)``), so ``print(model)`` lists what runs.

Conditioning is FiLM (per-feature scale and bias), as in Diffusion Policy (Chi et al.,
2023), where every residual block has its own encoder ``Linear(Mish(cat(step_feature,
cond)))``. Since Mish acts elementwise, the concatenation of those encoders over all blocks
is one map ``step_film(Mish(step_feature)) + obs_film(Mish(cond))``, which is how it is
stored here::

    film = step_films(t) + obs_films(cond)     (B, F), F = sum of the blocks' FiLM sizes
    out = denoise(sample, film)                the network body; block i reads its slice

``forward(sample, t, cond)`` is ``denoise(sample, step_films(t) + obs_films(cond))``. A
sampler computes ``obs_films`` once per chunk and ``step_films`` once per schedule, so a
denoising step is the body alone. Faster CPU inference is opt-in and lives elsewhere
(:mod:`policies.cpu_inference`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ConditionalResidualBlock1D",
    "ConditionalUnet1D",
    "Conv1dBlock",
    "Denoiser",
    "JointMLPDenoiser",
    "MLPDenoiser",
    "SinusoidalStepEmbedding",
    "count_parameters",
]


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class SinusoidalStepEmbedding(nn.Module):
    """Transformer-style sinusoidal embedding of diffusion steps: ``(B,) -> (B, dim)``."""

    def __init__(self, dim: int):
        super().__init__()
        if dim % 2 or dim < 4:
            raise ValueError(f"embedding dim must be even and >= 4, got {dim}")
        half = dim // 2
        freqs = torch.exp(
            torch.arange(half, dtype=torch.float32) * (-math.log(10000.0) / (half - 1))
        )
        self.register_buffer("freqs", freqs, persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """Embed steps ``t`` of shape ``(B,)``; returns ``(B, dim)`` float32."""
        angles = t.to(torch.float32)[:, None] * self.freqs[None, :]
        return torch.cat([angles.sin(), angles.cos()], dim=-1)


class Denoiser(nn.Module):
    """The FiLM conditioning shared by the conditional denoisers (see the module docstring).

    Subclasses build their body, then call :meth:`_build_film` with their blocks' FiLM
    sizes, and implement :meth:`denoise`.

    Attributes:
        step_encoder: ``t (B,) -> (B, step_embed_dim)``: sinusoidal, Linear, Mish, Linear.
        step_film: the step feature's share of every block's FiLM, ``(B, F)``.
        obs_film: the observation's share of every block's FiLM, ``(B, F)`` (no bias).
        film_sizes: the blocks' FiLM sizes, in the order :meth:`denoise` reads them.
    """

    horizon: int
    action_dim: int
    cond_dim: int

    def _build_step_encoder(self, step_embed_dim: int) -> None:
        self.step_encoder = nn.Sequential(
            SinusoidalStepEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )

    def _build_film(self, step_embed_dim: int, obs_features: int, film_sizes: list[int]) -> None:
        """The two affine maps to all blocks' FiLM parameters (from the Mish of their input)."""
        self.film_sizes = list(film_sizes)
        self.film_activation = nn.Mish()
        self.step_film = nn.Linear(step_embed_dim, sum(film_sizes))
        self.obs_film = nn.Linear(obs_features, sum(film_sizes), bias=False)

    def step_films(self, t: torch.Tensor) -> torch.Tensor:
        """Step part of the FiLM parameters of all blocks, ``t (S,) -> (S, F)``."""
        return self.step_film(self.film_activation(self.step_encoder(t)))

    def obs_films(self, cond: torch.Tensor) -> torch.Tensor:
        """Observation part of the FiLM parameters of all blocks, ``cond (B, G) -> (B, F)``."""
        return self.obs_film(self.film_activation(cond))

    def forward(self, sample: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predict the noise: ``sample (B, H, C)``, ``t (B,)``, ``cond (B, G)`` -> ``(B, H, C)``."""
        return self.denoise(sample, self.obs_films(cond) + self.step_films(t))

    def denoise(self, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """Predict the noise from precomputed FiLM parameters.

        Args:
            sample: ``(B, H, C)`` noisy chunk.
            film: ``(B, F)`` ``obs_films(cond) + step_films(t)``.

        Returns:
            ``(B, H, C)`` predicted noise (or clean chunk).
        """
        raise NotImplementedError


# ---------------------------------------------------------------------------- U-Net


class Conv1dBlock(nn.Module):
    """Conv1d (same length) -> GroupNorm -> Mish: ``(B, C_in, T) -> (B, C_out, T)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.GroupNorm(n_groups, out_channels)
        self.act = nn.Mish()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C_in, T)`` -> ``(B, C_out, T)``."""
        return self.act(self.norm(self.conv(x)))


class ConditionalResidualBlock1D(nn.Module):
    """Two conv blocks with a FiLM ``scale * h + bias`` between them, plus a residual.

    ``x (B, C_in, T)``, ``film (B, 2 C_out)`` (scale, then bias) -> ``(B, C_out, T)``; the
    residual is a 1x1 convolution when the channel counts differ.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.out_channels = out_channels
        self.block1 = Conv1dBlock(in_channels, out_channels, kernel_size, n_groups)
        self.block2 = Conv1dBlock(out_channels, out_channels, kernel_size, n_groups)
        self.residual = (
            nn.Conv1d(in_channels, out_channels, 1)
            if in_channels != out_channels
            else nn.Identity()
        )

    @property
    def film_size(self) -> int:
        """Floats of FiLM this block reads: a scale and a bias per output channel."""
        return 2 * self.out_channels

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """``x (B, C_in, T)``, ``film (B, 2 C_out)`` -> ``(B, C_out, T)``."""
        scale, bias = film.unsqueeze(-1).chunk(2, dim=1)  # (B, C_out, 1) each
        h = scale * self.block1(x) + bias
        return self.block2(h) + self.residual(x)


class ConditionalUnet1D(Denoiser):
    """Diffusion Policy's 1-D temporal conditional U-Net (FiLM on step and observation).

    The chunk is a sequence of ``H`` controllers with ``C`` channels, convolved over time.
    Each level of ``down_dims`` has two FiLM-conditioned residual blocks; all levels but
    the last halve the length (strided conv), two blocks sit in the middle, and the way up
    concatenates the skip connections and doubles the length back (transposed conv).
    With ``down_dims = (64, 128, 256)`` and ``H = 16``::

        (B, C, 16) -> down 64 -> (B, 64, 8) -> down 128 -> (B, 128, 4) -> down 256
                   -> (B, 256, 4) -> mid 256, 256 -> up [256 + 256 -> 128] -> (B, 128, 8)
                   -> up [128 + 128 -> 64] -> (B, 64, 16)
                   -> final conv block, 1x1 conv -> (B, C, 16)

    Args:
        action_dim: C, floats per controller.
        cond_dim: G, flattened observation-chunk size.
        horizon: H (a multiple of ``2 ** (len(down_dims) - 1)``).
        down_dims: channel widths per level.
        kernel_size: odd temporal kernel size.
        n_groups: GroupNorm groups.
        step_embed_dim: diffusion-step embedding size.

    Shapes: ``sample (B, H, C)``, ``t (B,)``, ``cond (B, G)`` -> ``(B, H, C)``.
    """

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        horizon: int,
        down_dims: tuple[int, ...] = (64, 128, 256),
        kernel_size: int = 5,
        n_groups: int = 8,
        step_embed_dim: int = 128,
    ):
        super().__init__()
        factor = 2 ** (len(down_dims) - 1)
        if horizon % factor:
            raise ValueError(
                f"horizon {horizon} must be a multiple of {factor} for down_dims {down_dims}"
            )
        self.horizon, self.action_dim, self.cond_dim = horizon, action_dim, cond_dim
        self._build_step_encoder(step_embed_dim)

        def block(c_in: int, c_out: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(c_in, c_out, kernel_size, n_groups)

        dims = [action_dim, *down_dims]
        self.down = nn.ModuleList()
        for level, (c_in, c_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            last = level == len(down_dims) - 1
            downsample = nn.Identity() if last else nn.Conv1d(c_out, c_out, 3, 2, 1)
            self.down.append(nn.ModuleList([block(c_in, c_out), block(c_out, c_out), downsample]))
        self.mid = nn.ModuleList([block(down_dims[-1], down_dims[-1]) for _ in range(2)])
        self.up = nn.ModuleList()
        for c_small, c_big in reversed(list(zip(down_dims[:-1], down_dims[1:], strict=True))):
            upsample = nn.ConvTranspose1d(c_small, c_small, 4, 2, 1)
            self.up.append(
                nn.ModuleList([block(2 * c_big, c_small), block(c_small, c_small), upsample])
            )
        self.final_block = Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups)
        self.final_conv = nn.Conv1d(down_dims[0], action_dim, 1)
        self._build_film(step_embed_dim, cond_dim, [b.film_size for b in self.film_blocks()])

    def film_blocks(self) -> list[ConditionalResidualBlock1D]:
        """The residual blocks in the order they read their FiLM slices (down, mid, up)."""
        return [m for m in self.modules() if isinstance(m, ConditionalResidualBlock1D)]

    def denoise(self, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """``sample (B, H, C)``, ``film (B, F)`` -> ``(B, H, C)`` (see :class:`Denoiser`)."""
        films = iter(film.split(self.film_sizes, dim=-1))
        x = sample.transpose(1, 2)  # (B, C, H)
        skips = []
        for res1, res2, downsample in self.down:
            x = res2(res1(x, next(films)), next(films))
            skips.append(x)
            x = downsample(x)
        for res in self.mid:
            x = res(x, next(films))
        for res1, res2, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=1)  # the finest level's skip stays unused
            x = upsample(res2(res1(x, next(films)), next(films)))
        return self.final_conv(self.final_block(x)).transpose(1, 2)


# ---------------------------------------------------------------------------- MLP


class ResidualMLPBlock(nn.Module):
    """``h -> W2 Mish(LN(y')) + skip(h)`` with ``y' = (1 + scale) y + bias``,
    ``y = W1 Mish(LN(h))``: ``h (B, in)``, ``film (B, 2 out)`` -> ``(B, out)``."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.out_features = out_features
        self.norm1 = nn.LayerNorm(in_features)
        self.fc1 = nn.Linear(in_features, out_features)
        self.norm2 = nn.LayerNorm(out_features)
        self.fc2 = nn.Linear(out_features, out_features)
        self.act = nn.Mish()
        self.skip = (
            nn.Linear(in_features, out_features, bias=False)
            if in_features != out_features
            else nn.Identity()
        )

    @property
    def film_size(self) -> int:
        """Floats of FiLM this block reads: a scale and a bias per output feature."""
        return 2 * self.out_features

    def forward(self, h: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """``h (B, in)``, ``film (B, 2 out)`` (scale, then bias) -> ``(B, out)``."""
        scale, bias = film.chunk(2, dim=-1)
        y = self.fc1(self.act(self.norm1(h)))
        y = (1 + scale) * y + bias
        return self.fc2(self.act(self.norm2(y))) + self.skip(h)


class MLPDenoiser(Denoiser):
    """Residual MLP denoiser over the flattened chunk (the CPU default).

    The input layer sees the flattened noisy chunk ``(B, H * C)`` plus a bias from the
    observation and step (the first ``widths[0]`` FiLM entries); then one FiLM-conditioned
    residual block (LayerNorm, Mish) per entry of ``widths``; then a projection back to
    ``(B, H, C)`` that starts at zero (an untrained denoiser predicts no noise)::

        h = W_in flatten(sample) + film_0                  (B, widths[0])
        h = block_k(h, film_k)                             (B, widths[k])
        out = W_out Mish(LN(h))                            (B, H * C) -> (B, H, C)

    The observation's FiLM share is a linear map of ``cat(cond, Mish(cond))`` (the input
    layer's bias needs the observation itself, not only its Mish). Keep ``widths`` at least
    ``H * C`` wide: the noise prediction needs every coordinate of the noisy chunk.

    Shapes: ``sample (B, H, C)``, ``t (B,)``, ``cond (B, G)`` -> ``(B, H, C)``.
    """

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        horizon: int,
        widths: tuple[int, ...] = (512, 512, 512),
        step_embed_dim: int = 128,
    ):
        super().__init__()
        self.horizon, self.action_dim, self.cond_dim = horizon, action_dim, cond_dim
        flat = horizon * action_dim
        self._build_step_encoder(step_embed_dim)
        self.input = nn.Linear(flat, widths[0])
        sizes = [widths[0], *widths]
        self.blocks = nn.ModuleList(
            [ResidualMLPBlock(i, o) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.out_norm = nn.LayerNorm(widths[-1])
        self.out_act = nn.Mish()
        self.output = nn.Linear(widths[-1], flat)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        film_sizes = [widths[0]] + [b.film_size for b in self.blocks]
        self._build_film(step_embed_dim, 2 * cond_dim, film_sizes)

    def obs_films(self, cond: torch.Tensor) -> torch.Tensor:
        """Observation part of the FiLM parameters, ``cond (B, G) -> (B, F)``, from
        ``cat(cond, Mish(cond))``."""
        return self.obs_film(torch.cat([cond, self.film_activation(cond)], dim=-1))

    def denoise(self, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """``sample (B, H, C)``, ``film (B, F)`` -> ``(B, H, C)`` (see :class:`Denoiser`)."""
        input_bias, *films = film.split(self.film_sizes, dim=-1)
        h = self.input(sample.flatten(1)) + input_bias
        for block, block_film in zip(self.blocks, films, strict=True):
            h = block(h, block_film)
        return self.output(self.out_act(self.out_norm(h))).view_as(sample)


class JointMLPDenoiser(nn.Module):
    """Unconditional MLP denoiser over flat vectors (Diffusion-model-augmented BC).

    It models a *joint* distribution, e.g. of ``x = [observation chunk, controller chunk]``
    (both normalised and flattened), by predicting the noise added to the whole vector::

        e = step_encoder(t)                            sinusoidal -> Linear -> Mish -> Linear
        h_0 = x
        h_k = Mish(LN(W_k h_{k-1} + b_k(e))) (+ h_{k-1} when the widths agree)
        eps = W_out h_K                                (zero-initialised: predicts no noise)

    with a per-layer bias ``b_k(e)`` from the diffusion-step feature (one linear map for
    all layers). Keep the first width near ``dim`` or above.

    Shapes: ``sample (B, D)``, ``t (B,)`` long -> ``(B, D)``.
    """

    def __init__(self, dim: int, widths: tuple[int, ...] = (512, 512), step_embed_dim: int = 64):
        super().__init__()
        self.dim = dim
        self.widths = list(widths)
        self.step_encoder = nn.Sequential(
            SinusoidalStepEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
            nn.Mish(),
        )
        sizes = [dim, *widths]
        self.layers = nn.ModuleList(
            [nn.Linear(i, o) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.norms = nn.ModuleList([nn.LayerNorm(o) for o in widths])
        self.step_bias = nn.Linear(step_embed_dim, sum(widths))
        self.output = nn.Linear(widths[-1], dim)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)

    def forward(self, sample: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Predict the noise: ``sample (B, D)``, ``t (B,)`` long -> ``(B, D)``."""
        biases = self.step_bias(self.step_encoder(t)).split(self.widths, dim=-1)
        h = sample
        for layer, norm, bias in zip(self.layers, self.norms, biases, strict=True):
            y = F.mish(norm(layer(h) + bias))
            h = y + h if y.shape == h.shape else y
        return self.output(h)
