"""The denoisers (policies.networks) and their CPU inference form (policies.cpu_inference):
shapes, plain torch modules, FiLM precomputation, the U-Net against torch's functional
ops, the time-major inference model and its pieces against the plain ones, and policies
saved by the previous code."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from policies.cpu_inference import (
    TAPS_MIN_BATCH,
    ClosedFormMish,
    TimeMajorConv1d,
    TimeMajorConvTranspose1d,
    TimeMajorGroupNorm,
    cpu_inference_model,
)
from policies.networks import ConditionalUnet1D, MLPDenoiser, count_parameters
from policies.serialization import load_policy

SAVED = Path(__file__).parent / "data" / "policies_0.x"

#: the only modules with parameters a denoiser may hold: what print(model) shows runs
PLAIN_MODULES = (nn.Linear, nn.Conv1d, nn.ConvTranspose1d, nn.GroupNorm, nn.LayerNorm)


def small_unet(kernel_size: int = 5) -> ConditionalUnet1D:
    torch.manual_seed(0)
    return ConditionalUnet1D(
        20, 12, 16, down_dims=(16, 32, 64), kernel_size=kernel_size, n_groups=4, step_embed_dim=16
    )


def small_mlp() -> MLPDenoiser:
    torch.manual_seed(0)
    net = MLPDenoiser(20, 12, 16, widths=(64, 96), step_embed_dim=16)
    with torch.no_grad():  # the output layer starts at zero: make the output depend on all
        net.output.weight.normal_(0, 0.05)
    return net


@pytest.fixture(params=["unet1d", "mlp"])
def net(request):
    return small_unet() if request.param == "unet1d" else small_mlp()


def _inputs(batch: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x, cond = torch.randn(batch, 16, 20, generator=g), torch.randn(batch, 12, generator=g)
    return x, torch.randint(0, 100, (batch,), generator=g), cond


# ---------------------------------------------------------------- the plain model
def test_shapes(net):
    x, t, cond = _inputs(3)
    total = sum(net.film_sizes)
    assert net.obs_films(cond).shape == (3, total)
    assert net.step_films(t).shape == (3, total)
    assert net(x, t, cond).shape == (3, 16, 20)


def test_print_shows_torch_modules_that_all_run(net):
    """Every parameter sits in a plain torch module and receives a gradient."""
    printed = repr(net)
    for name in ("Linear", "Mish"):
        assert name in printed
    if isinstance(net, ConditionalUnet1D):
        for name in ("Conv1d(", "ConvTranspose1d(", "GroupNorm("):
            assert name in printed
    for module in net.modules():
        if any(True for _ in module.parameters(recurse=False)):
            assert type(module) in PLAIN_MODULES, type(module)
    x, t, cond = _inputs(4)
    net(x, t, cond).square().sum().backward()
    unused = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.any()]
    assert not unused


def test_mlp_has_one_observation_film_map():
    net = small_mlp()
    assert [n for n, _ in net.named_modules() if "obs_film" in n] == ["obs_film"]
    assert net.obs_film.in_features == 2 * 12  # cat(cond, Mish(cond))


def test_precomputed_films_equal_the_forward(net):
    """A sampler's FiLM (observation part once, step part for a whole schedule)."""
    x, _, cond = _inputs(3)
    t = torch.tensor([4, 4, 4])
    plain = net(x, t, cond)
    with torch.inference_mode():
        film = net.obs_films(cond) + net.step_films(torch.tensor([9, 4]))[1]
        torch.testing.assert_close(net.denoise(x, film), plain, atol=1e-6, rtol=1e-6)


def test_unet_equals_a_reference_built_from_torch_functional_ops():
    """The U-Net's wiring against F.conv1d / F.group_norm / F.conv_transpose1d."""
    net = small_unet()

    def block(b, x):
        conv = F.conv1d(x, b.conv.weight, b.conv.bias, padding=2)
        return F.mish(F.group_norm(conv, 4, b.norm.weight, b.norm.bias))

    def res(r, x, film):
        scale, bias = film.view(x.shape[0], 2, -1, 1).unbind(1)
        h = block(r.block2, scale * block(r.block1, x) + bias)
        if isinstance(r.residual, nn.Identity):
            return h + x
        return h + F.conv1d(x, r.residual.weight, r.residual.bias)

    x, t, cond = _inputs(5)
    films = iter((net.obs_films(cond) + net.step_films(t)).split(net.film_sizes, dim=-1))
    h, skips = x.transpose(1, 2), []
    for r1, r2, down in net.down:
        h = res(r2, res(r1, h, next(films)), next(films))
        skips.append(h)
        if not isinstance(down, nn.Identity):
            h = F.conv1d(h, down.weight, down.bias, stride=2, padding=1)
    for r in net.mid:
        h = res(r, h, next(films))
    for r1, r2, up in net.up:
        h = torch.cat([h, skips.pop()], dim=1)
        h = res(r2, res(r1, h, next(films)), next(films))
        h = F.conv_transpose1d(h, up.weight, up.bias, stride=2, padding=1)
    h = F.conv1d(block(net.final_block, h), net.final_conv.weight, net.final_conv.bias)
    torch.testing.assert_close(net(x, t, cond), h.transpose(1, 2), atol=1e-5, rtol=1e-5)


def test_unet_of_the_hint_paper_size():
    net = ConditionalUnet1D(20, 12, 16, down_dims=(64, 128, 256), kernel_size=5, n_groups=8)
    assert 4.0e6 < count_parameters(net) < 4.6e6  # the paper's ~4.2 M


# ---------------------------------------------------------------- CPU inference model
def _time_major(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T)`` -> time-major ``(T, B, C)`` contiguous."""
    return x.permute(2, 0, 1).contiguous()


@pytest.mark.parametrize(
    ("kernel_size", "stride", "bias"), [(5, 1, True), (3, 1, True), (3, 2, True), (1, 1, False)]
)
@pytest.mark.parametrize("length", [4, 8])
def test_time_major_conv1d_equals_conv1d_by_both_schemes(kernel_size, stride, bias, length):
    """im2col (below TAPS_MIN_BATCH, and for strides and 1x1) and the per-tap GEMMs."""
    torch.manual_seed(0)
    conv = nn.Conv1d(6, 10, kernel_size, stride, padding=kernel_size // 2, bias=bias)
    x = torch.randn(TAPS_MIN_BATCH + 1, 6, length)
    expected = _time_major(conv(x))
    conv.__class__ = TimeMajorConv1d
    conv.lay_out_taps()
    torch.testing.assert_close(conv(_time_major(x)), expected)  # taps where they apply
    torch.testing.assert_close(conv.im2col(_time_major(x)), expected)
    torch.testing.assert_close(conv(_time_major(x[:1])), expected[:, :1])  # im2col


def test_time_major_conv_transpose1d_equals_conv_transpose1d():
    torch.manual_seed(0)
    conv = nn.ConvTranspose1d(6, 10, 4, 2, 1)
    x = torch.randn(3, 6, 4)
    expected = conv(x)
    conv.__class__ = TimeMajorConvTranspose1d
    torch.testing.assert_close(conv(_time_major(x)), _time_major(expected))


def test_time_major_group_norm_equals_group_norm():
    torch.manual_seed(0)
    norm = nn.GroupNorm(4, 12)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = 3 * torch.randn(5, 12, 8) + 1
    expected = norm(x)
    norm.__class__ = TimeMajorGroupNorm
    torch.testing.assert_close(norm(_time_major(x)), _time_major(expected))


def test_closed_form_mish_equals_mish_also_where_exp_overflows():
    """To float32 rounding of ``x`` (the closed form subtracts two terms of size ``|x|``)."""
    x = torch.cat([torch.linspace(-30, 30, 1001), torch.tensor([-1e4, -100.0, 100.0, 1e4])])
    ours, theirs = ClosedFormMish()(x), F.mish(x)
    assert torch.isfinite(ours).all()
    assert ((ours - theirs).abs() <= 1e-6 * theirs.abs() + 2e-7 * x.abs() + 1e-7).all()


@pytest.mark.parametrize("kernel_size", [3, 5])
@pytest.mark.parametrize("batch", [1, TAPS_MIN_BATCH + 1])  # im2col, per-tap GEMMs
def test_cpu_inference_model_computes_the_same(kernel_size, batch):
    net = small_unet(kernel_size)
    fast = cpu_inference_model(net)
    x, t, cond = _inputs(batch)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x, t, cond), net(x, t, cond), atol=2e-5, rtol=1e-5)


def test_cpu_inference_model_is_a_copy_with_the_same_state_dict():
    net = small_unet()
    fast = cpu_inference_model(net)
    ours, theirs = net.state_dict(), fast.state_dict()
    assert list(ours) == list(theirs)
    for key, value in ours.items():
        assert theirs[key].data_ptr() != value.data_ptr(), key  # copied...
        assert torch.equal(theirs[key], value), key  # ...and equal
    assert all(
        type(m).__module__.startswith("torch") or type(m).__module__ == "policies.networks"
        for m in net.modules()
    )  # net is unchanged
    inference_classes = {type(m) for m in fast.modules()}
    for cls in (TimeMajorConv1d, TimeMajorConvTranspose1d, TimeMajorGroupNorm, ClosedFormMish):
        assert cls in inference_classes
    assert not any(p.requires_grad for p in fast.parameters())
    x, t, cond = _inputs(TAPS_MIN_BATCH)
    with torch.inference_mode():
        before = net(x, t, cond)
    with torch.no_grad():
        for p in net.parameters():  # an optimiser step, an EMA update or a load
            p.mul_(0.9)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x, t, cond), before, atol=2e-5, rtol=1e-5)  # a snapshot
        after = net(x, t, cond)
        assert not torch.allclose(after, before, atol=1e-3)
        torch.testing.assert_close(
            cpu_inference_model(net)(x, t, cond), after, atol=2e-5, rtol=1e-5
        )


def test_cpu_inference_model_of_the_mlp_is_the_same_function():
    net = small_mlp()
    fast = cpu_inference_model(net)
    x, t, cond = _inputs(8)
    with torch.inference_mode():
        torch.testing.assert_close(fast(x, t, cond), net(x, t, cond), atol=0, rtol=0)


# ---------------------------------------------------------------- saved policies
@pytest.mark.parametrize("denoiser", ["unet1d", "mlp"])
def test_policies_saved_by_the_previous_networks_load_and_act_the_same(denoiser):
    """tests/policies/data/policies_0.x was written by the time-major kernel networks.py."""
    expected = json.loads((SAVED / "expected.json").read_text())[denoiser]
    policy = load_policy(SAVED / denoiser)
    assert policy.config.denoiser == denoiser
    obs = np.array(expected["observations"])
    chunks = policy.sample_chunk(obs, deterministic=True).numpy()
    np.testing.assert_allclose(chunks, np.array(expected["chunks"]), atol=1e-5, rtol=1e-5)
    actions = policy.predict(obs, deterministic=True)[0]
    np.testing.assert_allclose(actions, np.array(expected["actions"]), atol=1e-5, rtol=1e-5)
