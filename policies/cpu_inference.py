"""Faster CPU inference for the U-Net: the same model run *time-major*, convolutions as GEMMs.

The library's U-Net (:class:`policies.networks.ConditionalUnet1D`) works on ``(B, C, T)``
as Diffusion Policy's does. On CPU, PyTorch's convolution is slow for a batch of its short
sequences (``T`` = 4 to 16 steps of 64 to 512 channels). :func:`cpu_inference_model`
returns a copy of the denoiser (the same function) whose body runs on time-major
``(T, B, C)`` tensors instead:

* a convolution is, from batch :data:`TAPS_MIN_BATCH`, one GEMM per kernel tap over the
  rows of all samples (a time slice of a time-major tensor is one contiguous matrix), and
  below it one im2col GEMM (the padded windows of all samples gathered into one
  ``(T_out * B, C_in * k)`` matrix);
* a transposed convolution is one GEMM whose four taps are then added into place;
* FiLM, the skip concatenations and the residuals broadcast over ``(T, B, C)`` without a
  transpose between blocks (the chunk is transposed once on the way in and once out);
* Mish is computed in closed form with one exponential (:class:`ClosedFormMish`).

The returned model is an inference *copy*, like ``torch.jit.freeze``'s: the same
``state_dict`` (equal tensors, copied), plus each convolution's weight laid out once more
as its taps ``(k, C_in, C_out)`` for the per-tap GEMMs (a buffer outside the
``state_dict``). It computes what the model computed when it was made; after the weights
change (training, an EMA update, a load), make it again.

:meth:`policies.ddpm.DDPMChunkingPolicy.compile_sampler` compiles this model on CPU
(Inductor then fuses the gathers with the group norm, FiLM and Mish around them); GPUs run
the plain modules (cuDNN). The measured gains of each piece are in
``docs/results/sampling.md`` (``benchmarks/cpu_inference_ablation.py``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from policies.networks import ConditionalResidualBlock1D, ConditionalUnet1D, Denoiser

__all__ = [
    "ClosedFormMish",
    "TimeMajorConv1d",
    "TimeMajorConvTranspose1d",
    "TimeMajorGroupNorm",
    "TimeMajorResidualBlock1D",
    "TimeMajorUnet1D",
    "TAPS_MIN_BATCH",
    "cpu_inference_model",
]


#: batch size from which a stride-1 convolution runs as one GEMM per kernel tap; below it
#: the k calls cost more than the one im2col GEMM (at batch 1, compiled or not)
TAPS_MIN_BATCH = 8


class TimeMajorConv1d(nn.Conv1d):
    """``nn.Conv1d`` (zero padding, no dilation or groups) on time-major tensors:
    ``x (T, B, C_in)`` -> ``(T_out, B, C_out)`` contiguous, by one of two schemes (the same
    result to float32 rounding):

    * :meth:`taps` (stride 1, ``k > 1``, batch from :data:`TAPS_MIN_BATCH`);
    * :meth:`im2col` (otherwise).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (T, B, C_in)`` -> ``(T_out, B, C_out)``."""
        (k,), (stride,) = self.kernel_size, self.stride
        if stride == 1 and k > 1 and x.shape[1] >= TAPS_MIN_BATCH:
            return self.taps(x)
        return self.im2col(x)

    def im2col(self, x: torch.Tensor) -> torch.Tensor:
        """One GEMM: the padded windows ``x[t * stride : t * stride + k]`` of all samples,
        unfolded along time, are ``(T_out, B, C_in, k)``, the order of the weight's
        ``(C_in, k)``, so the weight enters as its stored ``(C_out, C_in * k)`` matrix,
        transposed (no copy of it). ``x (T, B, C_in)`` -> ``(T_out, B, C_out)``."""
        (k,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        _, batch, channels = x.shape
        if pad:
            x = F.pad(x, (0, 0, 0, 0, pad, pad))
        windows = x.unfold(0, k, stride)  # (T_out, B, C_in, k)
        cols = windows.reshape(-1, channels * k)
        weight = self.weight.view(self.out_channels, channels * k).t()
        out = cols @ weight if self.bias is None else torch.addmm(self.bias, cols, weight)
        return out.view(windows.shape[0], batch, self.out_channels)

    def lay_out_taps(self) -> None:
        """Store the weight once more as its taps, ``tap_weight (k, C_in, C_out)``
        contiguous (``tap_weight[j]`` is ``W_j^T``): a buffer outside the ``state_dict``,
        read by :meth:`taps`. :func:`cpu_inference_model` calls it."""
        taps = self.weight.detach().permute(2, 1, 0).contiguous()
        self.register_buffer("tap_weight", taps, persistent=False)

    def taps(self, x: torch.Tensor) -> torch.Tensor:
        """Stride 1: ``out[t] = b + sum_j W_j x[t + j - p]`` as one GEMM per tap ``j``, added
        in place into the rows where ``t + j - p`` lies inside the sequence (a time slice of
        all samples is one contiguous block of rows). No copy of the input or the weight
        (``tap_weight``, laid out by :meth:`lay_out_taps`) and no products with the zero
        padding. ``x (T, B, C_in)`` -> ``(T, B, C_out)``."""
        (k,), (pad,) = self.kernel_size, self.padding
        length, batch, channels = x.shape
        x = x.contiguous()
        taps = self.tap_weight  # (k, C_in, C_out)
        rows = x.view(length * batch, channels)
        out = rows @ taps[pad] if self.bias is None else torch.addmm(self.bias, rows, taps[pad])
        out = out.view(length, batch, self.out_channels)
        for j in range(k):
            shift = j - pad
            lo, hi = max(0, -shift), length - max(0, shift)
            if j == pad or hi <= lo:
                continue
            target = out[lo:hi].view(-1, self.out_channels)
            target.addmm_(x[lo + shift : hi + shift].view(-1, channels), taps[j])
        return out


class TimeMajorConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with kernel 4, stride 2, padding 1 on time-major tensors, as
    one GEMM: ``x (T, B, C_in)`` -> ``(2 T, B, C_out)``.

    ``y = x W`` (``W`` the stored ``(C_in, C_out * 4)``) gives every tap's contribution
    ``y[i, :, :, j] = W_j^T x[i]``; output ``2m`` collects taps 1 (from input ``m``) and 3
    (input ``m - 1``), output ``2m + 1`` taps 2 (input ``m``) and 0 (input ``m + 1``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (T, B, C_in)`` -> ``(2 T, B, C_out)``."""
        length, batch, channels = x.shape
        c_out = self.out_channels
        rows = x.reshape(length * batch, channels)
        y = (rows @ self.weight.view(channels, c_out * 4)).view(length, batch, c_out, 4)
        even, odd = y[..., 1], y[..., 2]  # (T, B, C_out)
        if self.bias is not None:
            even, odd = even + self.bias, odd + self.bias
        even = torch.cat([even[:1], even[1:] + y[:-1, ..., 3]])
        odd = torch.cat([odd[:-1] + y[1:, ..., 0], odd[-1:]])
        return torch.stack([even, odd], dim=1).view(2 * length, batch, c_out)


class TimeMajorGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` on time-major tensors: torch's kernel on a ``(B, C, T)`` view.
    ``x (T, B, C)`` -> ``(T, B, C)`` (a view of a ``(B, C, T)`` result)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (T, B, C)`` -> ``(T, B, C)``."""
        out = F.group_norm(x.permute(1, 2, 0), self.num_groups, self.weight, self.bias, self.eps)
        return out.permute(2, 0, 1)


class ClosedFormMish(nn.Mish):
    """Mish ``x tanh(softplus(x))`` in closed form: ``x - 2 x / (n + 2)``, ``n = e^x (e^x + 2)``.

    ``tanh(log(1 + e^x)) = n / (n + 2)``, so one exponential replaces the exponential,
    logarithm and tanh of ``F.mish``. Equal to float32 rounding of ``x`` (for ``x < 0`` it
    subtracts two terms of size ``|x|``); no clamp is needed: where ``e^x`` overflows,
    ``2 x / (n + 2)`` is 0 and the result ``x``. Any shape.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Elementwise Mish of ``x`` (any shape)."""
        e = torch.exp(x)
        n = torch.add(e, 2.0).mul_(e).add_(2.0)
        return torch.addcdiv(x, x, n, value=-2.0)


class TimeMajorResidualBlock1D(ConditionalResidualBlock1D):
    """:class:`ConditionalResidualBlock1D` on time-major tensors: the FiLM ``(B, C_out)``
    broadcasts over ``(T, B, C_out)`` as it is.

    ``x (T, B, C_in)``, ``film (B, 2 C_out)`` -> ``(T, B, C_out)``.
    """

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """``x (T, B, C_in)``, ``film (B, 2 C_out)`` (scale, then bias) -> ``(T, B, C_out)``."""
        scale, bias = film.chunk(2, dim=1)  # (B, C_out) each
        h = torch.addcmul(bias, scale, self.block1(x))
        return self.block2(h) + self.residual(x)


class TimeMajorUnet1D(ConditionalUnet1D):
    """:class:`ConditionalUnet1D` whose body runs on time-major ``(T, B, C)`` tensors; the
    same parameters and the same function. Shapes as the plain model's."""

    def denoise(self, sample: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """``sample (B, H, C)``, ``film (B, F)`` -> ``(B, H, C)`` (see :class:`Denoiser`)."""
        films = iter(film.split(self.film_sizes, dim=-1))
        x = sample.transpose(0, 1).contiguous()  # (H, B, C)
        skips = []
        for res1, res2, downsample in self.down:
            x = res2(res1(x, next(films)), next(films))
            skips.append(x)
            x = downsample(x)
        for res in self.mid:
            x = res(x, next(films))
        for res1, res2, upsample in self.up:
            x = torch.cat([x, skips.pop()], dim=-1)  # the finest level's skip stays unused
            x = upsample(res2(res1(x, next(films)), next(films)))
        return self.final_conv(self.final_block(x)).transpose(0, 1)


#: the plain class -> its inference form (nn.Identity and Conv1dBlock are kept)
TIME_MAJOR: dict[type, type] = {
    ConditionalUnet1D: TimeMajorUnet1D,
    ConditionalResidualBlock1D: TimeMajorResidualBlock1D,
    nn.Conv1d: TimeMajorConv1d,
    nn.ConvTranspose1d: TimeMajorConvTranspose1d,
    nn.GroupNorm: TimeMajorGroupNorm,
    nn.Mish: ClosedFormMish,
}


def _check_supported(module: nn.Module) -> None:
    """Raise ``ValueError`` for a convolution the time-major forms do not compute."""
    if type(module) is nn.Conv1d:
        plain = module.dilation == (1,) and module.groups == 1
        if not plain or module.padding_mode != "zeros" or isinstance(module.padding, str):
            raise ValueError(f"cpu_inference_model: unsupported convolution {module}")
    if type(module) is nn.ConvTranspose1d:
        shape = (module.kernel_size, module.stride, module.padding, module.output_padding)
        if shape != ((4,), (2,), (1,), (0,)) or module.dilation != (1,) or module.groups != 1:
            raise ValueError(f"cpu_inference_model: unsupported transposed convolution {module}")


def cpu_inference_model(model: Denoiser) -> Denoiser:
    """An inference copy of the denoiser with its U-Net body run time-major with GEMM
    convolutions, for CPU inference.

    The returned model (in eval mode, without gradients) holds a *copy* of ``model``'s
    parameters and buffers (an equal ``state_dict``, the same keys) and each convolution's
    taps laid out for the per-tap GEMMs (:meth:`TimeMajorConv1d.lay_out_taps`); only the
    modules' classes differ (:data:`TIME_MAJOR`). It computes the same function as
    ``model`` does now, to float32 rounding, with the same ``forward``, ``obs_films``,
    ``step_films`` and ``denoise`` shapes; it does not follow later changes of ``model``'s
    weights (make it again). ``model`` is left unchanged; a model without convolutions (the
    MLP) comes back as a copy that computes exactly what it does.

    Args:
        model: a denoiser of :mod:`policies.networks`.

    Returns:
        the equivalent denoiser for CPU inference.
    """
    fast = copy.deepcopy(model).requires_grad_(False)
    if isinstance(fast, ConditionalUnet1D):
        for module in fast.modules():
            _check_supported(module)
            if type(module) in TIME_MAJOR:
                module.__class__ = TIME_MAJOR[type(module)]
            if isinstance(module, TimeMajorConv1d):
                module.lay_out_taps()
    return fast.eval()
