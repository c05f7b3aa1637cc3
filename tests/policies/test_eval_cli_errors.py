"""hint-eval refuses bad arguments in one line, before loading or rolling out anything."""

from __future__ import annotations

import pytest

from policies import cli


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sigma", "inf"], "--sigma must be a finite number >= 0, got inf"),
        (["--sigma", "nan"], "--sigma must be a finite number >= 0, got nan"),
        (["--seed-start", "-5"], "--seed-start must be >= 0, got -5"),
        (["--sample-seed", "-1"], "--sample-seed must be >= 0, got -1"),
        (["--json", "{tmp}"], "--json {tmp} is a directory"),
        (["--json", "/proc/eval.json"], "cannot write /proc/eval.json"),
    ],
)
def test_bad_arguments_are_one_line_before_any_work(tmp_path, capsys, monkeypatch, extra, message):
    def no_load(*args, **kwargs):
        raise AssertionError("the policy was loaded before the arguments were checked")

    monkeypatch.setattr("policies.serialization.load_policy", no_load)
    extra = [e.format(tmp=tmp_path) for e in extra]
    assert cli.eval_main([str(tmp_path / "policy"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hint-eval: error: ") and err.count("\n") == 1
    assert message.format(tmp=tmp_path) in err


def test_hint_train_finds_an_unwritable_out_before_reading_the_data(tmp_path, capsys, monkeypatch):
    from hint_envs.data import chunks

    def no_read(*args, **kwargs):
        raise AssertionError("the data was read before --out was checked")

    monkeypatch.setattr(chunks.ChunkDataset, "__init__", no_read)
    data = tmp_path / "demos.hdf5"
    data.write_bytes(b"")
    assert cli.main([str(data), "--out", "/proc/run"]) == 2
    err = capsys.readouterr().err
    assert (
        err.startswith("hint-train: error: cannot write /proc/run/config.json")
        and err.count("\n") == 1
    )


def test_hint_eval_of_a_policy_with_an_unknown_env_kwarg_is_one_line(demos, tmp_path, capsys):
    import json

    from policy_testing import make_policy, tiny_config

    from policies.serialization import save_policy

    directory = save_policy(make_policy(demos, tiny_config()), tmp_path / "p")
    config = json.loads((directory / "config.json").read_text())
    config["env_kwargs"] = {"bogus": 1}
    (directory / "config.json").write_text(json.dumps(config))
    assert cli.eval_main([str(directory), "--episodes", "1", "--threads", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hint-eval: error: cannot evaluate {directory}: cannot make")
    assert "bogus" in err and err.count("\n") == 1
