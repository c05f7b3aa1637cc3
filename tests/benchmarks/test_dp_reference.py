"""benchmarks/dp_reference.py: the latency reference is the same model with the same steps."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from dp_reference import from_denoiser, reference_sample  # noqa: E402

from policies.networks import ConditionalUnet1D, count_parameters  # noqa: E402
from policies.sampling import DiffusionSampler  # noqa: E402


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    net = ConditionalUnet1D(20, 12, 16, down_dims=(16, 32, 64), n_groups=4, step_embed_dim=16)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.2)  # no zero-initialised layer hides a wrongly copied weight
    return net.eval(), from_denoiser(net).eval()


def test_reference_has_the_same_parameters_and_function(nets):
    net, reference = nets
    assert count_parameters(reference) == count_parameters(net)
    x, cond = torch.randn(3, 16, 20), torch.randn(3, 12)
    with torch.no_grad():
        for step in (0, 7, 19):
            t = torch.tensor(step)
            torch.testing.assert_close(
                reference(x, t, cond), net(x, t.expand(3), cond), atol=1e-5, rtol=1e-5
            )


@pytest.mark.parametrize(("kind", "steps"), [("ddpm", 20), ("ddim", 5)])
def test_reference_loop_draws_the_same_samples_as_the_policy_sampler(nets, kind, steps):
    net, reference = nets
    sampler = DiffusionSampler(kind, 20, steps)
    cond, shape = torch.randn(2, 12), (2, 16, 20)
    theirs = reference_sample(reference, sampler, cond, shape, torch.Generator().manual_seed(3))
    with torch.inference_mode():
        obs_film, step_films = net.obs_films(cond), net.step_films(sampler.timesteps)
        ours = sampler.sample(
            lambda x, i: net.denoise(x, obs_film + step_films[i]),
            shape,
            torch.Generator().manual_seed(3),
        )
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
