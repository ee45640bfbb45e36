"""rnnbench's basic sweeper: Hydra's own, without composing every job a second time when rnnbench validated it."""
