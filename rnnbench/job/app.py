"""The Hydra application behind ``rnnbench train``: a thin entry, all work lives in :mod:`rnnbench.job.run`."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from rnnbench.config import config_dir


@hydra.main(config_path=str(config_dir()), config_name="train", version_base="1.3")
def train(cfg: DictConfig) -> float | None:
    from rnnbench.job.run import run  # imported here so --help and --cfg stay fast

    return run(cfg)
