"""How the policies in this folder were made, with the code of commit 22b1f10.

That commit's ``policies/networks.py`` built the U-Net from time-major kernels
(``_Conv1d``, ``_ConvTranspose1d``, a hand-written group norm); the plain rewrite keeps the
``state_dict`` keys, and ``tests/policies/test_networks.py`` checks that these files still
load and give the chunks and actions recorded in ``expected.json``. Run from the repository root at
that commit::

    python tests/policies/data/policies_0.x/make_policies.py tests/policies/data/policies_0.x

(The U-Net is saved without EMA weights to keep the folder under 200 kB.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import hint_envs  # noqa: F401
from hint_envs.data.normalization import NormalizationStats, RangeNormalizer
from hint_envs.wrappers import PrimitiveControllerWrapper
from policies.config import DDPMPolicyConfig
from policies.ddpm import DDPMChunkingPolicy
from policies.serialization import save_policy

ENV_ID = "hint_envs/PlanarQuadrotor-v0"


def main(out: Path) -> None:
    results = {}
    for denoiser in ("unet1d", "mlp"):
        config = DDPMPolicyConfig(
            obs_horizon=2,
            horizon=8,
            chunk_length=4,
            widths=(16, 16),
            step_embed_dim=16,
            diffusion_steps=10,
            down_dims=(8, 16),
            n_groups=4,
            kernel_size=5,
            prediction_type="epsilon",
            scheduler="ddpm",
            clip_sample=False,  # (so the recorded chunks show the network, not the clip)
            denoiser=denoiser,
            gains=False,
            ema=denoiser == "mlp",
        )
        env = PrimitiveControllerWrapper(gym.make(ENV_ID), 4, 2, gains=False)
        space = env.unwrapped.observation_space
        stats = NormalizationStats(
            RangeNormalizer(space.low, space.high), RangeNormalizer(-np.ones(2), np.ones(2))
        )
        torch.manual_seed(0)
        policy = DDPMChunkingPolicy(
            env.observation_space, env.action_space, config, stats, seed=0, env_id=ENV_ID
        )
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():  # move every weight off its initial value (zeros included)
            for net in filter(None, (policy.denoiser, policy.ema_denoiser)):
                for p in net.parameters():
                    p.add_(0.1 * torch.randn(p.shape, generator=generator))
        save_policy(policy, out / denoiser)
        obs = np.stack([env.reset(seed=s)[0] for s in range(3)])
        chunk = policy.sample_chunk(obs, deterministic=True)
        action = policy.predict(obs, deterministic=True)[0]
        results[denoiser] = {
            "observations": obs.tolist(),
            "chunks": chunk.tolist(),
            "actions": action.tolist(),
        }
    (out / "expected.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
