"""Models: input encoders, the fused recurrent core and task-shaped heads."""

from rnnbench.models.sequence_model import CELLS, SequenceModel

__all__ = ["CELLS", "SequenceModel"]
