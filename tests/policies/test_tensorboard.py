"""TensorBoard logs of training: the event file holds the loss curve the policy reports."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from policy_testing import make_dataset, tiny_config

from policies.config import MLPBCConfig, TrainConfig

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    acc = event_accumulator.EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_train_writes_the_loss_curve(demos, tmp_path):
    from policies.training import train

    config = tiny_config()
    policy = train(
        make_dataset(demos, config),
        config,
        TrainConfig(steps=30, log_every=10, warmup_steps=2, num_threads=1),
        progress=False,
        tensorboard_dir=tmp_path / "tb",
    )
    scalars = read_scalars(tmp_path / "tb")
    assert set(scalars) == {"train/loss", "train/lr"}
    assert [step for step, _ in scalars["train/loss"]] == [10, 20, 30]
    expected = [entry["loss"] for entry in policy.train_history]
    np.testing.assert_allclose([v for _, v in scalars["train/loss"]], expected, rtol=1e-6)


def test_the_baselines_log_too(demos, tmp_path):
    from policies.baselines import train_mlp_bc

    config = MLPBCConfig(obs_horizon=2, horizon=8, chunk_length=4, widths=(32,))
    train_mlp_bc(
        make_dataset(demos, config),
        config,
        TrainConfig(steps=20, log_every=10, warmup_steps=2, num_threads=1),
        progress=False,
        tensorboard_dir=tmp_path / "bc",
    )
    assert [step for step, _ in read_scalars(tmp_path / "bc")["mlp_bc/loss"]] == [10, 20]


def test_hint_train_tensorboard_option(tmp_path, demos):
    from hint_envs.data import write_demonstrations
    from policies.cli import main

    path = write_demonstrations(tmp_path / "d.hdf5", demos, "hint_envs/PlanarQuadrotor-v0")
    args = [str(path), "--out", str(tmp_path / "policy"), "--steps", "20", "--horizon", "8"]
    args += ["--chunk-length", "4", "--widths", "32,32", "--threads", "1", "--no-progress"]
    assert main([*args, "--tensorboard", str(tmp_path / "tb")]) == 0
    assert [s for s, _ in read_scalars(tmp_path / "tb")["train/loss"]] == [20]
