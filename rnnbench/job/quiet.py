"""Quiet by default: the screen shows rnnbench's own lines and real errors; W&B, Lightning, Hydra and Python
warnings go to the job's log file (``<run dir>/rnnbench.log``) unless ``verbose=true``."""

from __future__ import annotations

import logging
import os

# The libraries whose chatter is kept off the screen; they reach the root logger's file handler.
LIBRARIES = ("pytorch_lightning", "lightning_fabric", "lightning", "torch", "hydra", "wandb", "py.warnings")


class ScreenFilter(logging.Filter):
    """For the console handler of Hydra's logging config: with ``verbose`` everything passes; otherwise
    rnnbench's own records (INFO and up) and anyone's errors."""

    def __init__(self, verbose: bool = False):
        super().__init__()
        self.verbose = bool(verbose)

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or record.name.startswith("rnnbench") or record.levelno >= logging.ERROR


def route_library_output(verbose: bool) -> None:
    """In a job's process, before the libraries speak: their loggers propagate to the root logger (whose
    handlers Hydra set up: the console, filtered, and the job's log file), Python warnings become log
    records, and W&B prints nothing of its own (its messages stay in its debug logs in the run dir)."""
    for name in ("pytorch_lightning", "lightning_fabric"):
        logger = logging.getLogger(name)
        # Lightning gives itself a stream handler when imported before logging is configured (our preflight
        # imports it): hand its records to the root logger instead.
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True
    logging.captureWarnings(True)
    if not verbose:
        os.environ["WANDB_SILENT"] = "true"  # "true", never empty: wandb 0.31 rejects WANDB_SILENT=
        os.environ.setdefault("WANDB_CONSOLE", "off")
