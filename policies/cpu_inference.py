"""Faster CPU inference for the denoisers: the same model with its convolutions as GEMMs.

PyTorch's CPU convolution is slow for a batch of the U-Net's short sequences (``T`` = 4
to 16 steps of 64 to 512 channels). Here, from batch :data:`GEMM_MIN_BATCH`, a convolution
gathers the padded windows of the whole batch into one ``(B * T_out, C_in * k)`` matrix and
multiplies it by the weight (im2col), and the transposed convolution is one GEMM whose
four taps are then added into place. :func:`cpu_inference_model` returns the denoiser with
those modules swapped in; everything else is the plain model.

Use it through :meth:`policies.ddpm.DDPMChunkingPolicy.compile_sampler`, which compiles
this model on CPU (``torch.compile`` then fuses the gathers with the group norm, FiLM and
Mish around them); GPUs run the plain modules (cuDNN). Its measured gain is in
``docs/results/sampling.md``.
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F
from torch import nn

from policies.networks import Denoiser

__all__ = ["cpu_inference_model"]


#: batch size from which the convolutions run as GEMMs; below it, PyTorch's own kernels
#: (at batch 1 they were faster than the GEMM forms, compiled or not)
GEMM_MIN_BATCH = 8


class GemmConv1d(nn.Conv1d):
    """``nn.Conv1d`` (zero padding, no dilation or groups) as one im2col GEMM.

    ``x (B, C_in, T)`` -> ``(B, C_out, T_out)``; from batch :data:`GEMM_MIN_BATCH` a
    transposed view of a ``(B, T_out, C_out)`` tensor (the next GEMM's windows are then
    rows of it), below it ``nn.Conv1d``'s result.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C_in, T)`` -> ``(B, C_out, T_out)``."""
        batch, channels, _ = x.shape
        if batch < GEMM_MIN_BATCH:
            return super().forward(x)
        (k,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        windows = F.pad(x, (pad, pad)).unfold(2, k, stride)  # (B, C_in, T_out, k)
        length = windows.shape[2]
        cols = windows.permute(0, 2, 1, 3).reshape(batch * length, channels * k)
        weight = self.weight.view(self.out_channels, channels * k).t()
        out = cols @ weight if self.bias is None else torch.addmm(self.bias, cols, weight)
        return out.view(batch, length, self.out_channels).transpose(1, 2)


class GemmConvTranspose1d(nn.ConvTranspose1d):
    """``nn.ConvTranspose1d`` with kernel 4, stride 2, padding 1 as one GEMM.

    ``y = x W`` gives every tap's contribution ``y[:, i, :, j] = W_j^T x[:, :, i]``; output
    ``2m`` collects taps 1 (from input ``m``) and 3 (input ``m - 1``), output ``2m + 1``
    taps 2 (input ``m``) and 0 (input ``m + 1``). ``x (B, C_in, T)`` -> ``(B, C_out, 2 T)``;
    below batch :data:`GEMM_MIN_BATCH`, ``nn.ConvTranspose1d``'s own kernel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x (B, C_in, T)`` -> ``(B, C_out, 2 T)``."""
        batch, channels, length = x.shape
        if batch < GEMM_MIN_BATCH:
            return super().forward(x)
        c_out = self.out_channels
        rows = x.transpose(1, 2).reshape(batch * length, channels)
        y = (rows @ self.weight.view(channels, c_out * 4)).view(batch, length, c_out, 4)
        even, odd = y[..., 1], y[..., 2]  # (B, T, C_out)
        if self.bias is not None:
            even, odd = even + self.bias, odd + self.bias
        even = torch.cat([even[:, :1], even[:, 1:] + y[:, :-1, :, 3]], dim=1)
        odd = torch.cat([odd[:, :-1] + y[:, 1:, :, 0], odd[:, -1:]], dim=1)
        return torch.stack([even, odd], dim=2).view(batch, 2 * length, c_out).transpose(1, 2)


def _gemm_class(module: nn.Module) -> type[nn.Module] | None:
    """The GEMM form of ``module``'s class, or None where it has none."""
    if type(module) is nn.Conv1d:
        plain = module.dilation == (1,) and module.groups == 1
        zeros = module.padding_mode == "zeros" and not isinstance(module.padding, str)
        return GemmConv1d if plain and zeros else None
    if type(module) is nn.ConvTranspose1d:
        shape = (module.kernel_size, module.stride, module.padding, module.output_padding)
        plain = module.dilation == (1,) and module.groups == 1
        return GemmConvTranspose1d if plain and shape == ((4,), (2,), (1,), (0,)) else None
    return None


def cpu_inference_model(model: Denoiser) -> Denoiser:
    """The denoiser with its convolutions computed as GEMMs, for CPU inference.

    The returned model (in eval mode) *shares* ``model``'s parameters and buffers (its
    ``state_dict`` holds the same tensors), so it follows training, EMA updates and loads
    without being rebuilt; only the modules' classes differ (:class:`GemmConv1d`,
    :class:`GemmConvTranspose1d`). It computes the same function to float32 rounding.
    ``model`` is left unchanged; a model without convolutions (the MLP) comes back as a
    copy that computes exactly what it does.

    Args:
        model: a denoiser of :mod:`policies.networks`.

    Returns:
        the equivalent denoiser for CPU inference.
    """
    shared = itertools.chain(model.parameters(), model.buffers())
    fast = copy.deepcopy(model, memo={id(t): t for t in shared})
    for module in fast.modules():
        gemm = _gemm_class(module)
        if gemm is not None:
            module.__class__ = gemm
    return fast.eval()
