"""A same-machine latency reference written the way Diffusion Policy writes its sampler.

Diffusion Policy (Chi et al., 2023) builds its ``ConditionalUnet1D`` from ``nn.Conv1d``,
``nn.GroupNorm`` and ``nn.Mish`` modules on ``(B, C, T)`` tensors, gives every residual
block its own FiLM encoder ``Linear(Mish(cat(step_feature, obs)))``, recomputes the step
embedding and every FiLM at every denoising step, and samples with ``diffusers``'
``scheduler.step`` under ``torch.no_grad``. :class:`ReferenceUnet1D` and
:func:`reference_sample` do the same, in this project's own code, so that
``benchmarks/sampling_latency.py`` can time both implementations on the same machine,
threads and OpenMP settings, instead of comparing against a figure measured elsewhere.

:func:`from_denoiser` copies the weights of a :class:`policies.networks.ConditionalUnet1D`
into the reference, which then computes the same function (the tests check it): the
reference and the policy's sampler are the same model with the same steps.
"""

from __future__ import annotations

import torch
from torch import nn

from policies.networks import ConditionalUnet1D, SinusoidalStepEmbedding
from policies.sampling import DiffusionSampler

__all__ = ["ReferenceUnet1D", "from_denoiser", "reference_sample"]


class _ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, groups: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
            nn.GroupNorm(groups, c_out),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, cond_dim: int, kernel: int, groups: int):
        super().__init__()
        self.out_channels = c_out
        self.blocks = nn.ModuleList(
            [_ConvBlock(c_in, c_out, kernel, groups), _ConvBlock(c_out, c_out, kernel, groups)]
        )
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * c_out))
        self.residual_conv = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.blocks[0](x)
        embed = self.cond_encoder(cond).reshape(cond.shape[0], 2, self.out_channels, 1)
        out = embed[:, 0] * out + embed[:, 1]
        return self.blocks[1](out) + self.residual_conv(x)


class ReferenceUnet1D(nn.Module):
    """Diffusion Policy's conditional U-Net layout: ``(B, H, C), (B,), (B, G) -> (B, H, C)``."""

    def __init__(
        self,
        action_dim: int,
        cond_dim: int,
        down_dims: tuple[int, ...] = (64, 128, 256),
        kernel_size: int = 5,
        n_groups: int = 8,
        step_embed_dim: int = 128,
    ):
        super().__init__()
        self.step_encoder = nn.Sequential(
            SinusoidalStepEmbedding(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        film_in = step_embed_dim + cond_dim
        res = lambda i, o: _ResBlock(i, o, film_in, kernel_size, n_groups)  # noqa: E731
        dims = [action_dim, *down_dims]
        pairs = list(zip(dims[:-1], dims[1:], strict=True))
        self.down = nn.ModuleList(
            nn.ModuleList(
                [
                    res(c_in, c_out),
                    res(c_out, c_out),
                    nn.Conv1d(c_out, c_out, 3, 2, 1) if i < len(pairs) - 1 else nn.Identity(),
                ]
            )
            for i, (c_in, c_out) in enumerate(pairs)
        )
        self.mid = nn.ModuleList([res(down_dims[-1], down_dims[-1]) for _ in range(2)])
        self.up = nn.ModuleList(
            nn.ModuleList(
                [res(2 * c_out, c_in), res(c_in, c_in), nn.ConvTranspose1d(c_in, c_in, 4, 2, 1)]
            )
            for c_in, c_out in reversed(pairs[1:])
        )
        self.final = nn.Sequential(
            _ConvBlock(down_dims[0], down_dims[0], kernel_size, n_groups),
            nn.Conv1d(down_dims[0], action_dim, 1),
        )

    def forward(self, sample: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        x = sample.moveaxis(-1, -2)
        feature = torch.cat([self.step_encoder(t.expand(sample.shape[0])), cond], dim=-1)
        skips = []
        for res1, res2, down in self.down:
            x = res2(res1(x, feature), feature)
            skips.append(x)
            x = down(x)
        for res in self.mid:
            x = res(x, feature)
        for res1, res2, up in self.up:
            x = torch.cat([x, skips.pop()], dim=1)
            x = up(res2(res1(x, feature), feature))
        return self.final(x).moveaxis(-1, -2)


def from_denoiser(net: ConditionalUnet1D) -> ReferenceUnet1D:
    """A :class:`ReferenceUnet1D` computing the same function as ``net``.

    The policy's U-Net keeps the per-block FiLM encoders as one step map and one
    observation map over all blocks; here each block gets its rows of both, side by side.
    """
    convs = net.down[0][0].block1.conv
    reference = ReferenceUnet1D(
        net.action_dim,
        net.cond_dim,
        tuple(level[0].out_channels for level in net.down),
        convs.kernel_size[0],
        net.down[0][0].block1.norm.num_groups,
        net.step_film.in_features,
    )
    source = dict(net.named_parameters())
    target = dict(reference.named_parameters())

    def copy(dst: str, src: str) -> None:
        target[dst].data.copy_(source[src].data.view_as(target[dst]))

    for i in (1, 3):
        copy(f"step_encoder.{i}.weight", f"step_encoder.{i}.weight")
        copy(f"step_encoder.{i}.bias", f"step_encoder.{i}.bias")
    ours = net.film_blocks()  # the residual blocks in the order of their FiLM rows
    theirs = [m for m in reference.modules() if isinstance(m, _ResBlock)]
    names = {id(m): n for n, m in net.named_modules()}
    ref_names = {id(m): n for n, m in reference.named_modules()}
    start = 0
    for block, ref in zip(ours, theirs, strict=True):
        src, dst = names[id(block)], ref_names[id(ref)]
        for conv in ("block1", "block2"):
            k = "0" if conv == "block1" else "1"
            for p in ("weight", "bias"):
                copy(f"{dst}.blocks.{k}.block.0.{p}", f"{src}.{conv}.conv.{p}")
                copy(f"{dst}.blocks.{k}.block.1.{p}", f"{src}.{conv}.norm.{p}")
        if not isinstance(block.residual, nn.Identity):
            for p in ("weight", "bias"):
                copy(f"{dst}.residual_conv.{p}", f"{src}.residual.{p}")
        rows = slice(start, start + block.film_size)
        start += block.film_size
        linear = ref.cond_encoder[1]
        with torch.no_grad():
            linear.weight.copy_(
                torch.cat([net.step_film.weight[rows], net.obs_film.weight[rows]], dim=1)
            )
            linear.bias.copy_(net.step_film.bias[rows])
    for level, ref_level in zip(net.down, reference.down, strict=True):
        if not isinstance(level[2], nn.Identity):
            ref_level[2].load_state_dict(level[2].state_dict())
    for level, ref_level in zip(net.up, reference.up, strict=True):
        ref_level[2].load_state_dict(level[2].state_dict())
    for p in ("weight", "bias"):
        copy(f"final.0.block.0.{p}", f"final_block.conv.{p}")
        copy(f"final.0.block.1.{p}", f"final_block.norm.{p}")
        copy(f"final.1.{p}", f"final_conv.{p}")
    return reference


def reference_sample(
    model: ReferenceUnet1D,
    sampler: DiffusionSampler,
    cond: torch.Tensor,
    shape: tuple[int, ...],
    generator: torch.Generator,
) -> torch.Tensor:
    """Diffusion Policy's sampling loop: the model and ``scheduler.step`` at every step.

    ``cond`` is the normalised flattened observation chunk ``(B, G)``; returns the
    normalised sample of ``shape``.
    """
    scheduler = sampler.scheduler
    with torch.no_grad():
        trajectory = torch.randn(shape, generator=generator, device=generator.device)
        for t in scheduler.timesteps:
            output = model(trajectory, t, cond)
            trajectory = scheduler.step(output, t, trajectory, generator=generator).prev_sample
    return trajectory
