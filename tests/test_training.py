"""Short real training runs: every task's loss falls, and the same seed gives the same numbers."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from rnnbench.config import build
from rnnbench.job.module import SequenceTaskModule
from hydra.utils import instantiate

from conftest import FAST


def validation_loss(module: SequenceTaskModule, datamodule) -> float:
    """The loss on the validation split, in eval mode; the module is left in the mode it was in (training starts
    from train mode, as Lightning expects)."""
    inputs, targets = datamodule.splits["val"]
    training = module.training
    with torch.no_grad():
        loss = module.task.compute_loss(module.eval()(inputs), targets).item()
    module.train(training)
    return loss


def train_briefly(cfg, steps: int, **trainer_options) -> tuple[float, float, dict[str, float]]:
    """Fit for ``steps`` and return (validation loss before, after, test metrics); ``trainer_options`` go to the
    Trainer (``limit_test_batches=2``: a large test split's first batches)."""
    pl.seed_everything(cfg.seed, verbose=False)
    datamodule = build(cfg.data, "data")
    datamodule.setup()
    module = SequenceTaskModule(build(cfg.model, "model", task=datamodule.task), instantiate(cfg.optim))
    trainer = pl.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
                         accelerator="cpu", **trainer_options)
    before = validation_loss(module, datamodule)
    trainer.fit(module, datamodule=datamodule)
    after = validation_loss(module, datamodule)
    trainer.test(module, datamodule=datamodule, verbose=False)  # the module logs for Lightning's callbacks only
    return before, after, {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}


@pytest.mark.parametrize("overrides,steps", [
    (("data=adding", "data.seq_len=10", "model.cell=gru", "optim.lr=0.01"), 60),
    (("data=copy", "data.seq_len=5", "model.cell=lstm", "optim.lr=0.01"), 60),
    (("data=digits", "model.cell=gru", "optim.lr=0.01"), 60),
    (("data=timemachine", "model.cell=rnn", "data.seq_len=16"), 60),
])
def test_short_training_lowers_the_loss(compose_config, timemachine_text, overrides, steps):
    extra = (f"data.path={timemachine_text}",) if "data=timemachine" in overrides else ()
    unused = {"data.num_train=512", "data.num_val=128", "data.num_test=128"} if "data=digits" in overrides else set()
    cfg = compose_config(*overrides, *[o for o in FAST if o not in unused], "model.hidden_size=32", *extra)
    before, after, test = train_briefly(cfg, steps)
    assert after < 0.9 * before, (before, after)
    assert set(test) == {"test/loss", f"test/{build(cfg.data, 'data').task.metric}"}


def test_same_config_and_seed_give_identical_metrics(compose_config):
    cfg = compose_config("data=adding", "data.seq_len=8", "model.cell=lstm", *FAST)
    first, second = train_briefly(cfg, 15), train_briefly(cfg, 15)
    assert first == second
    other = train_briefly(compose_config("data=adding", "data.seq_len=8", "model.cell=lstm", *FAST, "seed=1"), 15)
    assert other[2] != first[2]


def test_metrics_are_the_tasks(compose_config, timemachine_text):
    """Perplexity is exp(mean cross-entropy); accuracy reads only the copy task's recall steps."""
    cfg = compose_config("data=timemachine", f"data.path={timemachine_text}", *FAST)
    _, _, test = train_briefly(cfg, 5)
    assert test["test/perplexity"] == pytest.approx(torch.tensor(test["test/loss"]).exp().item(), rel=1e-4)
