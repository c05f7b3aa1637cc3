"""Denoisers of the DDPM chunking policy: a 1-D temporal conditional U-Net and a residual MLP
(and, for Diffusion-model-augmented BC, an unconditional residual MLP over joint vectors).

Both predict the noise ``eps`` added to a normalised chunk of primitive controllers (or,
trained with ``prediction_type="sample"``, the clean chunk itself)::

    sample: (B, H, C)  noisy chunk, H = horizon controllers of C = controller_size floats
    t:      (B,)       diffusion steps (long)
    cond:   (B, G)     flattened normalised observation chunk, G = obs_horizon * d_obs
    ->      (B, H, C)  predicted noise (or clean chunk)

Conditioning is FiLM (per-feature scale and bias) from ``cat(step_embedding(t), cond)``,
as in Diffusion Policy (Chi et al., 2023). Because the FiLM encoders are affine maps of
``Mish(cat(step_feature, cond))`` and Mish acts elementwise, each splits exactly into a
step part and an observation part. Every denoiser here computes its FiLM parameters of
all blocks at once as ``obs_film(cond) + step_film(t)`` (one matrix product each); a
sampler computes ``obs_film`` once per chunk and ``step_film`` once per schedule, and each
denoising step then only adds two precomputed rows into a buffer whose per-block views
(:meth:`Denoiser.split_film`) were taken once (:meth:`Denoiser.forward_parts`). Training
and sampling run the same code.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Denoiser",
    "ConditionalUnet1D",
    "JointMLPDenoiser",
    "MLPDenoiser",
    "SinusoidalStepEmbedding",
    "count_parameters",
    "winograd_matrices",
    "winograd_plan",
]


#: below this many elements, Mish runs as torch's single kernel (per-call overhead wins)
_FUSED_MISH_BELOW = 16384


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish ``x tanh(softplus(x))``; without autograd on large tensors, a faster closed form.

    ``tanh(log(1 + e^x)) = n / (n + 2)`` with ``n = e^x (e^x + 2)``, so
    ``mish(x) = x - 2 x / (n + 2)``: one exponential and four cheap elementwise ops,
    about 3x faster on CPU than ``torch.nn.functional.mish`` on large tensors. That kernel
    is used when a gradient is needed (for its fused backward) and for small tensors, where
    one call costs less than five. The two agree to float32 rounding. No clamp is needed:
    where ``e^x`` or ``n`` overflows to infinity, ``2 x / (n + 2)`` is 0 and the result ``x``.
    """
    if (x.requires_grad and torch.is_grad_enabled()) or x.numel() < _FUSED_MISH_BELOW:
        return F.mish(x)
    e = torch.exp(x)
    n = torch.add(e, 2.0).mul_(e).add_(2.0)
    return torch.addcdiv(x, x, n, value=-2.0)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters of ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class _Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mish(x)


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
    """Common FiLM plumbing of the denoisers (see the module docstring).

    Subclasses register their blocks' FiLM sizes with :meth:`_build_film` and implement
    :meth:`forward_parts`, the network body given each block's FiLM ``(scale, bias)``.
    """

    horizon: int
    action_dim: int
    cond_dim: int

    def _build_step_encoder(self, step_embed_dim: int) -> None:
        self.step_encoder = nn.Sequential(
            SinusoidalStepEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            _Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )

    def _build_film(self, step_embed_dim: int, film_sizes: list[int]) -> None:
        """One affine map from the step feature and one from the observation to all FiLMs."""
        self.film_sizes = list(film_sizes)
        total = sum(film_sizes)
        self.step_film = nn.Linear(step_embed_dim, total)
        self.obs_film = nn.Linear(self.cond_dim, total, bias=False)

    def step_films(self, t: torch.Tensor) -> torch.Tensor:
        """Step part of the FiLM parameters of all blocks, ``(S,) -> (S, F)``."""
        return self.step_film(mish(self.step_encoder(t)))

    def obs_films(self, cond: torch.Tensor) -> torch.Tensor:
        """Observation part of the FiLM parameters of all blocks, ``(B, G) -> (B, F)``."""
        return self.obs_film(mish(cond))

    def split_film(self, film: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-block ``(scale, bias)`` *views* of ``film (B, F)``, shaped to broadcast.

        Being views, they follow in-place updates of ``film``: a sampler splits its FiLM
        buffer once per chunk and then only rewrites the buffer at every step.
        """
        return [self._film_part(f) for f in film.split(self.film_sizes, dim=-1)]

    def _film_part(self, film: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, bias = film.unflatten(-1, (2, film.shape[-1] // 2)).unbind(-2)
        return scale, bias

    def forward(self, sample: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Predict the noise: ``sample (B, H, C)``, ``t (B,)``, ``cond (B, G)`` -> ``(B, H, C)``."""
        return self.denoise(sample, self.obs_films(cond) + self.step_films(t))

    def denoise(self, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """Predict the noise from precomputed FiLM parameters ``film (B, F)``."""
        return self.forward_parts(sample, self.split_film(film))

    def forward_parts(
        self, sample: torch.Tensor, parts: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        """Predict the noise from :meth:`split_film`'s per-block parameters."""
        raise NotImplementedError

    def prepare_inference(self) -> None:
        """Build or refresh the convolutions' cached weight layouts (call without autograd).

        A ``torch.compile`` of :meth:`forward_parts` reads these caches as they are, without
        the eager path's check that the weights are unchanged, so call this before each
        compiled use after an optimiser step, an EMA update or a load
        (:meth:`DDPMChunkingPolicy.sample_chunk` does, once per chunk)."""
        for module in self.modules():
            if isinstance(module, _Conv1d):
                module.prepare_inference()


#: batch size from which a stride-1 convolution runs as one GEMM per kernel tap instead of
#: im2col (see :class:`_Conv1d`); below it the per-call overhead of k products dominates
TAPS_MIN_BATCH = 8
#: output positions per Winograd tile: F(4, k) convolutions without autograd (see _Conv1d)
WINOGRAD_TILE = 4
#: interpolation points of the Winograd transforms (plus the point at infinity)
_WINOGRAD_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)
#: _Conv1d's cached Winograd weights: tiled, and for a sequence of exactly one tile
_WINOGRAD_CACHES = {False: "_winograd_cache", True: "_winograd_single_cache"}


def winograd_matrices(m: int, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Toom-Cook / Winograd ``F(m, k)`` for the correlation ``y[i] = sum_j w[j] d[i + j]``.

    On a tile of ``n = m + k - 1`` inputs ``d`` it gives the ``m`` outputs with ``n``
    products instead of ``m * k``: ``y = A^T ((G w) * (B^T d))``. The matrices come from
    the Vandermonde matrix ``V`` of the points 0, ±1, ±2, ±1/2 (as many as needed) and
    infinity: ``A^T = V_m^T``, ``G = V_k``, ``B^T = V_n^{-T}`` (the transposition of
    Toom-Cook polynomial multiplication). Returns float64 ``A^T (m, n)``, ``G (n, k)``,
    ``B^T (n, n)``.
    """
    n = m + k - 1
    if n - 1 > len(_WINOGRAD_POINTS):
        raise ValueError(f"F({m}, {k}) needs {n - 1} finite points; {len(_WINOGRAD_POINTS)} known")
    points = torch.tensor(_WINOGRAD_POINTS[: n - 1], dtype=torch.float64)

    def vandermonde(columns: int) -> torch.Tensor:
        v = torch.zeros(n, columns, dtype=torch.float64)
        v[:-1] = points[:, None] ** torch.arange(columns, dtype=torch.float64)
        v[-1, -1] = 1.0  # the point at infinity: the leading coefficient
        return v

    return vandermonde(m).T, vandermonde(k), torch.linalg.inv(vandermonde(n)).T


def winograd_plan(
    m: int, k: int, single_tile: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The transforms of a same-length convolution (``k`` odd, padding ``(k - 1) / 2``) on
    tiles of ``m`` outputs: ``out = A^T ((G w) * (D x))`` per tile, float64.

    Tiled (``single_tile=False``): ``F(m, k)`` of :func:`winograd_matrices` on windows of
    ``n = m + k - 1`` padded inputs, ``D = B^T``. A sequence of exactly ``m`` steps is one
    window whose padding is zeros, so ``D`` is the ``m`` columns of ``B^T`` that meet the
    data; and when ``k > m``, fewer products come from the transposed problem: with
    ``y[t] = sum_s c[s - t] x[s]`` and ``c[j] = w[j + p]`` (zero beyond the kernel), the
    reversed outputs ``y[m - 1 - t] = sum_s x[s] c[t + s - m + 1]`` are ``F(m, m)`` with the
    data ``x`` as its filter and the ``2 m - 1`` padded taps as its data: ``2 m - 1``
    products instead of ``m + k - 1`` (7 instead of 8 at ``m = 4``, ``k = 5``). Returns
    ``A^T (m, n)``, ``G (n, k)`` and ``D (n, n)`` (tiled) or ``(n, m)`` (one tile).
    """
    pad = (k - 1) // 2
    if not single_tile or k <= m:
        at, g, bt = winograd_matrices(m, k)
        return at, g, bt[:, pad : pad + m] if single_tile else bt
    at, g, bt = winograd_matrices(m, m)
    n, offset = 2 * m - 1, pad - (m - 1)
    embed = torch.zeros(n, k, dtype=torch.float64)  # c[i - m + 1] = w[i + offset]
    for i in range(n):
        if 0 <= i + offset < k:
            embed[i, i + offset] = 1.0
    return at.flip(0), bt @ embed, g


class _Conv1d(nn.Conv1d):
    """``nn.Conv1d`` (zero padding, no dilation or groups) on *time-major* ``(T, B, C)``.

    Same parameters as ``nn.Conv1d`` (``weight (C_out, C_in, k)``), but input and output
    are ``(T, B, C)`` contiguous, so that a time window of all samples is one contiguous
    ``(rows, C)`` matrix and a convolution is a few matrix products, not one small product
    per sample (PyTorch's CPU path for these short sequences). Two schemes, same results
    to float32 rounding:

    * *taps* (stride 1, batch >= :data:`TAPS_MIN_BATCH`): ``out[t] = b + sum_j W_j x[t + j - p]``
      as one in-place GEMM per tap over the rows where ``t + j - p`` is inside the sequence.
      No copy of the input, and no products with the zero padding (at ``T = 4``, ``k = 5``
      that is 30% of the im2col FLOPs).
    * *im2col* (otherwise): gather the padded windows once into ``(T_out * B, k * C_in)``
      and multiply by the weight as ``(k * C_in, C_out)``: one GEMM, fewer calls.

    * *Winograd* (instead of taps without autograd, when ``T`` is a multiple of
      :data:`WINOGRAD_TILE` and ``1 < k <= 5``; larger kernels would need points that
      lose float32 accuracy): ``F(4, k)`` (:func:`winograd_plan`) on
      tiles of 4 outputs: the transformed input tiles of all samples times the transformed
      weight is one batched GEMM of ``n = k + 3`` products per tile instead of ``k`` per
      output, 32 instead of 74 at ``T = 16``, ``k = 5`` (where the taps skip the padding).
      A sequence of one tile (``T = 4``) has zeros for the rest of its window; for
      ``k = 5`` it takes 7 products (the transposed problem) instead of 8, against 14 for
      the taps. It agrees with the taps to about ``1e-6`` relative.

    They multiply by the weight laid out as ``(k, C_in, C_out)`` (Winograd: its transform
    ``(n, C_in, C_out)``); without autograd that layout is cached (a GEMM reads it faster
    than the transposed parameter) and rebuilt when the weight changes (its version counter
    moves: an optimiser step, an EMA update, ``load_state_dict``).

    Inside ``torch.compile`` (without autograd) the caches are read as they are, so they
    must be built beforehand with :meth:`prepare_inference`; the Winograd transforms are
    then sums of strided slices that Inductor fuses with the elementwise work around them
    (:meth:`_winograd_pointwise`). Without the caches a compiled graph uses the taps.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (T, B, C_in)`` -> ``(T_out, B, C_out)``; the input may be any strided view for
        im2col, the output is contiguous."""
        (k,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        length, batch, channels = x.shape
        if stride == 1 and (k == 1 or batch >= TAPS_MIN_BATCH):
            winograd = self._winograd_kernel() and length % WINOGRAD_TILE == 0
            cache = _WINOGRAD_CACHES[length == WINOGRAD_TILE]
            if winograd and torch.compiler.is_compiling() and self._prepared(cache):
                return self._winograd_pointwise(x, pad)
            taps = self._tap_weights()  # (k, C_in, C_out)
            if winograd and self._inference(self.weight):
                return self._winograd(x.contiguous(), taps, pad)
            return self._taps(x.contiguous(), taps, pad)
        taps = self._tap_weights()
        if pad:
            x = F.pad(x, (0, 0, 0, 0, pad, pad))
        windows = x.unfold(0, k, stride).transpose(-1, -2)  # (T_out, B, k, C_in)
        cols = windows.reshape(-1, k * channels)
        return self._matmul(cols, taps.reshape(k * channels, -1)).view(
            windows.shape[0], batch, self.out_channels
        )

    def prepare_inference(self) -> None:
        """Build or refresh the cached weight layouts now (call without autograd).

        A compiled graph reads the Winograd cache without checking that the weight is
        unchanged (see :meth:`Denoiser.prepare_inference`)."""
        taps = self._tap_weights()
        if self.stride == (1,) and self._winograd_kernel():
            for single_tile in (False, True):  # the length of the next call is not known
                self._winograd_weights(taps, single_tile)

    def _winograd_kernel(self) -> bool:
        """A same-length convolution for which ``F(4, k)`` exists with our interpolation
        points: ``1 < k <= 5``, padding ``(k - 1) / 2``."""
        (k,), (pad,) = self.kernel_size, self.padding
        return 1 < k <= len(_WINOGRAD_POINTS) + 2 - WINOGRAD_TILE and 2 * pad == k - 1

    def _prepared(self, cache: str) -> bool:
        """Without autograd, with ``cache`` built beforehand (:meth:`prepare_inference`)."""
        return not torch.is_grad_enabled() and getattr(self, cache, None) is not None

    def _matmul(self, rows: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``rows (R, K) @ weight (K, C_out) + bias``."""
        return rows @ weight if self.bias is None else torch.addmm(self.bias, rows, weight)

    def _taps(self, x: torch.Tensor, taps: torch.Tensor, pad: int) -> torch.Tensor:
        length, batch, channels = x.shape
        out = self._matmul(x.view(length * batch, channels), taps[pad])  # centre: every row
        out = out.view(length, batch, self.out_channels)
        for j in range(taps.shape[0]):
            shift = j - pad
            lo, hi = max(0, -shift), length - max(0, shift)
            if j == pad or hi <= lo:
                continue
            rows = out[lo:hi].view(-1, self.out_channels)
            rows.addmm_(x[lo + shift : hi + shift].view(-1, channels), taps[j])
        return out

    def _winograd(self, x: torch.Tensor, taps: torch.Tensor, pad: int) -> torch.Tensor:
        length, batch, channels = x.shape
        tiles, cols = length // WINOGRAD_TILE, batch * channels
        # (m, n), (n, n) or one tile (n, m), (n, C_in, C_out)
        at, dt, transformed = self._winograd_weights(taps, tiles == 1)
        m, n = at.shape
        if tiles == 1:  # the window is [zeros(pad), x, zeros(pad)]: dt skips the zeros
            v = dt @ x.view(length, cols)  # (n, B * C_in)
        else:
            padded = F.pad(x.view(length, cols), (0, 0, pad, pad))
            windows = padded.as_strided((tiles, n, cols), (m * cols, cols, 1))
            v = torch.matmul(dt, windows).transpose(0, 1).contiguous()  # (n, tiles, B * C_in)
        products = torch.bmm(v.view(n, tiles * batch, channels), transformed)
        products = products.view(n, tiles, batch * self.out_channels)
        out = torch.matmul(at, products.transpose(0, 1))  # (tiles, m, B * C_out)
        out = out.view(length, batch, self.out_channels)
        return out if self.bias is None else out.add_(self.bias)

    def _winograd_pointwise(self, x: torch.Tensor, pad: int) -> torch.Tensor:
        """:meth:`_winograd` for ``torch.compile``: the same batched GEMM, with the input and
        output transforms written as sums of strided slices times constant coefficients,
        which Inductor fuses into one kernel each with the group norm, Mish and FiLM
        around them (as matrix products they would be library calls and memory passes)."""
        length, batch, channels = x.shape
        single_tile = length == WINOGRAD_TILE
        at, dt = self._winograd_coefficients[single_tile]
        transformed = getattr(self, _WINOGRAD_CACHES[single_tile])[2]
        m, n = len(at), len(dt)
        tiles = length // m
        if single_tile:  # dt's columns are the sequence (the zero padding is skipped)
            window = list(x.unsqueeze(1).unbind(0))
        else:
            xp = F.pad(x, (0, 0, 0, 0, pad, pad))
            window = [xp[j : j + m * (tiles - 1) + 1 : m] for j in range(n)]
        v = torch.stack([_combine(row, window) for row in dt])
        products = torch.bmm(v.view(n, tiles * batch, channels), transformed)
        products = products.view(n, tiles, batch, self.out_channels).unbind(0)
        out = torch.stack([_combine(row, products) for row in at], 1)
        out = out.view(length, batch, self.out_channels)
        return out if self.bias is None else out + self.bias

    @staticmethod
    def _inference(weight: torch.Tensor) -> bool:
        """No autograd and no tracing: the cached weight layouts may be used."""
        return not torch.compiler.is_compiling() and not (
            torch.is_grad_enabled() and weight.requires_grad
        )

    def _tap_weights(self) -> torch.Tensor:
        """The weight as ``(k, C_in, C_out)``; without autograd, a cached contiguous copy
        (in a compiled graph, the one :meth:`prepare_inference` built: a permuted view of the
        weight would be copied at every call)."""
        weight = self.weight
        if torch.compiler.is_compiling() and self._prepared("_tap_cache"):
            return self._tap_cache
        if not self._inference(weight):
            return weight.permute(2, 1, 0)
        key = (weight.data_ptr(), weight._version, weight.dtype, weight.device)
        if getattr(self, "_tap_key", None) != key:
            self._tap_cache = weight.detach().permute(2, 1, 0).contiguous()
            self._tap_key = key
            self._winograd_cache = self._winograd_single_cache = None
        return self._tap_cache

    def _winograd_weights(
        self, taps: torch.Tensor, single_tile: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``A^T``, ``D`` and ``G W`` of :func:`winograd_plan` (tiled or for a one-tile
        sequence) in the weight's dtype, cached with the tap layout (computed in float64)."""
        cache = _WINOGRAD_CACHES[single_tile]
        if getattr(self, cache, None) is None:
            at, g, dt = winograd_plan(WINOGRAD_TILE, taps.shape[0], single_tile)
            transformed = torch.tensordot(g.to(taps.device), taps.double(), dims=1)
            setattr(
                self,
                cache,
                tuple(
                    t.to(device=taps.device, dtype=taps.dtype).contiguous()
                    for t in (at, dt, transformed)
                ),
            )
            coefficients = getattr(self, "_winograd_coefficients", {})
            self._winograd_coefficients = {**coefficients, single_tile: (at.tolist(), dt.tolist())}
        return getattr(self, cache)


def _combine(row: list[float], terms) -> torch.Tensor:
    """``sum_j row[j] * terms[j]`` over the nonzero coefficients (a graph of pointwise ops)."""
    out = None
    for c, term in zip(row, terms, strict=True):
        if c:
            out = term * c if out is None else out + term * c
    return out


class _ConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with ``kernel 2 * stride``, ``padding stride / 2`` on ``(T, B, C)``.

    Doubles the length (stride 2, kernel 4, padding 1 as in Diffusion Policy): one GEMM
    ``y = x W`` gives every tap's contribution ``y[i, :, j] = W_j^T x[i]``; output ``2m``
    collects taps 1 (from ``i = m``) and 3 (``i = m - 1``), output ``2m + 1`` taps 2
    (``i = m``) and 0 (``i = m + 1``).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, **kwargs):
        super().__init__(in_channels, out_channels, kernel_size, **kwargs)
        shape = (self.kernel_size, self.stride, self.padding, self.dilation, self.output_padding)
        if shape != ((4,), (2,), (1,), (1,), (0,)):
            raise ValueError("_ConvTranspose1d supports kernel 4, stride 2, padding 1 only")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (T, B, C_in)`` -> ``(2 T, B, C_out)`` time-major contiguous."""
        length, batch, channels = x.shape
        c_out = self.out_channels
        weight = self.weight.view(channels, c_out * 4)  # (C_in, C_out, k) -> taps interleaved
        y = (x.reshape(-1, channels) @ weight).view(length, batch, c_out, 4)
        even, odd = y[..., 1], y[..., 2]
        if self.bias is not None:
            even, odd = even + self.bias, odd + self.bias
        even = torch.cat([even[:1], even[1:] + y[:-1, ..., 3]])
        odd = torch.cat([odd[:-1] + y[1:, ..., 0], odd[-1:]])
        return torch.stack([even, odd], dim=1).view(2 * length, batch, c_out)


def _group_norm(x: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """``nn.GroupNorm`` on time-major ``(T, B, C)``: statistics over (time, channels of a
    group) per sample, then one fused multiply-add.

    Below :data:`TAPS_MIN_BATCH`, torch's own kernel on a ``(B, C, T)`` view (one call;
    the result is a non-contiguous time-major view, which the im2col convolutions accept).
    From it on, statistics from two passes of plain sums (mean, then the centred squares),
    several times faster for this layout than ``torch.var_mean`` over the two reduced
    dimensions, and a contiguous result for the tap GEMMs.
    """
    length, batch, channels = x.shape
    groups = norm.num_groups
    if batch < TAPS_MIN_BATCH:  # torch's kernel on a (B, C, T) view; the result is a view
        return F.group_norm(x.permute(1, 2, 0), groups, norm.weight, norm.bias, norm.eps).permute(
            2, 0, 1
        )
    weight, bias = norm.weight.view(groups, -1), norm.bias.view(groups, -1)
    xg = x.view(length, batch, groups, channels // groups)
    count = length * xg.shape[-1]
    mean = xg.sum(0, keepdim=True).sum(3, keepdim=True).div_(count)
    centred = xg - mean
    var = centred.square().sum(0, keepdim=True).sum(3, keepdim=True).div_(count)
    scale = torch.rsqrt(var + norm.eps) * weight
    return torch.addcmul(bias, centred, scale).view(length, batch, channels)


class _Conv1dBlock(nn.Module):
    """Conv1d (same length) -> GroupNorm -> Mish, on time-major ``(T, B, C)``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.conv = _Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.GroupNorm(n_groups, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mish(_group_norm(self.conv(x), self.norm))


class _ConditionalResBlock1D(nn.Module):
    """Two conv blocks with a FiLM (``scale * h + bias``) between them, plus a residual."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int):
        super().__init__()
        self.out_channels = out_channels
        self.block1 = _Conv1dBlock(in_channels, out_channels, kernel_size, n_groups)
        self.block2 = _Conv1dBlock(out_channels, out_channels, kernel_size, n_groups)
        self.residual = (
            _Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    @property
    def film_size(self) -> int:
        return 2 * self.out_channels

    def forward(self, x: torch.Tensor, film: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``x (T, B, C_in)``, ``film`` = scale, bias ``(B, C_out)`` -> ``(T, B, C_out)``."""
        scale, bias = film
        h = torch.addcmul(bias, scale, self.block1(x))
        return self.block2(h) + self.residual(x)


class ConditionalUnet1D(Denoiser):
    """Diffusion Policy's 1-D temporal conditional U-Net (FiLM on step and observation).

    The chunk is a sequence of ``H`` controllers with ``C`` channels. Each level of
    ``down_dims`` has two FiLM-conditioned residual blocks; all levels but the last halve
    the sequence (strided conv), two blocks sit in the middle, and the way up concatenates
    the skip connections and doubles the length back (transposed conv).

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
        dims = [action_dim, *down_dims]
        block = lambda i, o: _ConditionalResBlock1D(i, o, kernel_size, n_groups)  # noqa: E731
        self.down = nn.ModuleList()
        for level, (c_in, c_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            last = level == len(down_dims) - 1
            self.down.append(
                nn.ModuleList(
                    [
                        block(c_in, c_out),
                        block(c_out, c_out),
                        nn.Identity() if last else _Conv1d(c_out, c_out, 3, stride=2, padding=1),
                    ]
                )
            )
        self.mid = nn.ModuleList([block(down_dims[-1], down_dims[-1]) for _ in range(2)])
        self.up = nn.ModuleList()
        for c_small, c_big in reversed(list(zip(down_dims[:-1], down_dims[1:], strict=True))):
            self.up.append(
                nn.ModuleList(
                    [
                        block(2 * c_big, c_small),
                        block(c_small, c_small),
                        _ConvTranspose1d(c_small, c_small, 4, stride=2, padding=1),
                    ]
                )
            )
        self.final_block = _Conv1dBlock(down_dims[0], down_dims[0], kernel_size, n_groups)
        self.final_conv = _Conv1d(down_dims[0], action_dim, 1)
        self._blocks = [m for m in self.modules() if isinstance(m, _ConditionalResBlock1D)]
        self._build_film(step_embed_dim, [b.film_size for b in self._blocks])

    def forward_parts(
        self, sample: torch.Tensor, parts: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        films = iter(parts)
        x = sample.transpose(0, 1).contiguous()  # time-major (H, B, C)
        skips = []
        for res1, res2, downsample in self.down:
            x = res2(res1(x, next(films)), next(films))
            skips.append(x)
            x = downsample(x)
        for res in self.mid:
            x = res(x, next(films))
        for res1, res2, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=-1)  # the finest level's skip stays unused
            x = res2(res1(x, next(films)), next(films))
            x = upsample(x)
        return self.final_conv(self.final_block(x)).transpose(0, 1)


class _ResidualMLPBlock(nn.Module):
    """``h -> h' + skip(h)`` with ``h' = W2 Mish(LN(FiLM(W1 Mish(LN(h)))))``."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.out_features = out_features
        self.norm1 = nn.LayerNorm(in_features)
        self.fc1 = nn.Linear(in_features, out_features)
        self.norm2 = nn.LayerNorm(out_features)
        self.fc2 = nn.Linear(out_features, out_features)
        self.skip = (
            nn.Linear(in_features, out_features, bias=False)
            if in_features != out_features
            else nn.Identity()
        )

    @property
    def film_size(self) -> int:
        return 2 * self.out_features

    def forward(self, h: torch.Tensor, film: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """``h (B, in)``, ``film`` = scale, bias ``(B, out)`` -> ``(B, out)``."""
        scale, bias = film
        y = self.fc1(mish(self.norm1(h)))
        y = torch.addcmul(bias, y, scale).add_(y)  # (1 + scale) * y + bias
        return self.fc2(mish(self.norm2(y))) + self.skip(h)


class MLPDenoiser(Denoiser):
    """Residual MLP denoiser over the flattened chunk (the CPU default).

    The input layer sees the flattened noisy chunk ``(B, H * C)``, the observation chunk
    and the step feature; then one FiLM-conditioned residual block (LayerNorm, Mish) per
    entry of ``widths``; then a projection back to ``(B, H, C)`` that starts at zero (an
    untrained denoiser predicts no noise). Keep ``widths`` at least ``H * C`` wide: the
    noise prediction needs every coordinate of the noisy chunk.

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
            [_ResidualMLPBlock(i, o) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.out_norm = nn.LayerNorm(widths[-1])
        self.output = nn.Linear(widths[-1], flat)
        nn.init.zeros_(self.output.weight)
        nn.init.zeros_(self.output.bias)
        # the first widths[0] FiLM entries are the conditioning's share of the input layer
        self._build_film(step_embed_dim, [widths[0]] + [b.film_size for b in self.blocks])
        self.obs_film = nn.Linear(2 * cond_dim, sum(self.film_sizes), bias=False)

    def obs_films(self, cond: torch.Tensor) -> torch.Tensor:
        """Observation part of the FiLM parameters, from ``cond`` and ``Mish(cond)``."""
        return self.obs_film(torch.cat([cond, mish(cond)], dim=-1))

    def split_film(self, film: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The input layer's conditioning bias ``(B, width)`` as ``(None, bias)``, then the
        blocks' ``(scale, bias)`` views."""
        films = film.split(self.film_sizes, dim=-1)
        return [(None, films[0])] + [self._film_part(f) for f in films[1:]]

    def forward_parts(
        self, sample: torch.Tensor, parts: list[tuple[torch.Tensor, torch.Tensor]]
    ) -> torch.Tensor:
        h = self.input(sample.flatten(1)) + parts[0][1]
        for block, block_film in zip(self.blocks, parts[1:], strict=True):
            h = block(h, block_film)
        return self.output(mish(self.out_norm(h))).view_as(sample)


class JointMLPDenoiser(nn.Module):
    """Unconditional MLP denoiser over flat vectors (Diffusion-model-augmented BC).

    It models a *joint* distribution, e.g. of ``x = [observation chunk, controller chunk]``
    (both normalised and flattened), by predicting the noise added to the whole vector::

        e = step_encoder(t)                            sinusoidal -> Linear -> Mish -> Linear
        h_0 = x
        h_k = Mish(LN(W_k h_{k-1} + b_k(e))) (+ h_{k-1} when the widths agree)
        eps = W_out h_K                                (zero-initialised: predicts no noise)

    with a per-layer bias ``b_k(e)`` from the diffusion-step feature (one linear map for
    all layers). It always uses ``torch.nn.functional.mish`` (not the closed form
    :func:`mish` takes without autograd), so a forward pass gives the same numbers with and
    without gradients: DBC compares the denoising losses of two such passes. Keep the
    first width near ``dim`` or above.

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
