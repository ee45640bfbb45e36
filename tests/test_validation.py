"""Bad input is refused up front, in one line naming the setting, the value and what is allowed."""

from __future__ import annotations

import pytest

from rnnbench.errors import RnnbenchError
from rnnbench.preflight import preflight


@pytest.mark.parametrize("overrides,message", [
    (["model.cell=transformer"], "model.cell='transformer' is not allowed: one of rnn, lstm, gru"),
    (["data=imagenet"], "data='imagenet' is not allowed: one of adding, copy, digits, timemachine"),
    (["optim=lbfgs"], "optim='lbfgs' is not allowed: one of adam, sgd"),
    (["logger=tensorboard"], "logger='tensorboard' is not allowed: one of csv, none, wandb"),
    (["model.num_layers=0"], "model.num_layers=0 is not allowed: an integer >= 1"),
    (["model.hidden_size=0"], "model.hidden_size=0 is not allowed: an integer >= 1"),
    (["model.dropout=1.0"], "model.dropout=1.0 is not allowed: a number in [0, 1)"),
    (["model.dropout=-0.5"], "model.dropout=-0.5 is not allowed: a number in [0, 1)"),
    (["trainer.gradient_clip_val=0"], "trainer.gradient_clip_val=0 is not allowed: null (no clipping) or a number > 0"),
    (["trainer.gradient_clip_val=-1.0"], "trainer.gradient_clip_val=-1.0 is not allowed"),
    (["trainer.gradient_clip_algorithm=max"], "trainer.gradient_clip_algorithm='max' is not allowed: one of norm, value"),
    (["data.seq_len=0"], "data.seq_len=0 is not allowed: an integer >= 2"),
    (["data=copy", "data.seq_len=0"], "data.seq_len=0 is not allowed: an integer >= 1"),
    (["data=timemachine", "model.bidirectional=true"],
     "model.bidirectional=True is not allowed: false for the causal task 'timemachine'"),
    (["data=timemachine", "data.path=/no/such/file.txt"],
     "data.path='/no/such/file.txt' is not allowed: an existing text file"),
    (["optim.lr=0"], "optim.lr=0 is not allowed: a number > 0"),
    (["seed=-1"], "seed=-1 is not allowed: an integer >= 0"),
    (["model.cell=gru", "model.forget_bias=1.0"], "model.forget_bias=1.0 is not allowed: null, or a number with cell=lstm"),
    (["model.nosuchkey=1"], "Could not override 'model.nosuchkey'"),
])
def test_bad_input_is_refused_in_one_line(overrides, message):
    with pytest.raises(RnnbenchError) as error:
        preflight(overrides)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_sweep_is_checked_job_by_job_before_any_runs():
    assert preflight(["-m", "model.cell=rnn,lstm,gru", "seed=0,1"]) == 6
    with pytest.raises(RnnbenchError, match="model.num_layers=0 is not allowed"):
        preflight(["-m", "model.cell=rnn,lstm", "model.num_layers=1,0"])


def test_experiment_sweeper_params_are_expanded():
    assert preflight(["-m", "experiment=quickstart"]) == 6


def test_binary_data_path_is_refused(tmp_path):
    binary = tmp_path / "model.pt"
    binary.write_bytes(b"\x80\x02\x00\x00binary\x00" * 100)
    with pytest.raises(RnnbenchError, match="is not allowed: a non-empty UTF-8 text file"):
        preflight(["data=timemachine", f"data.path={binary}"])
