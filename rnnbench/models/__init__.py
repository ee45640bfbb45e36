"""Models: input encoders, the layer stack of any recurrent cell, task-shaped heads."""

from rnnbench.models.cells import CELLS, Cell
from rnnbench.models.sequence_model import SequenceModel
from rnnbench.models.stack import LayerStack

__all__ = ["CELLS", "Cell", "LayerStack", "SequenceModel"]
