"""Datasets: each a Lightning data module that describes its :class:`~rnnbench.data.task.Task`.

The registry is the ``conf/data`` config group: ``data=<name>`` picks ``conf/data/<name>.yaml``,
whose ``_target_`` names one of these classes.
"""

from rnnbench.data.adding import AddingProblem
from rnnbench.data.base import InMemoryDataModule
from rnnbench.data.copy_memory import CopyMemory
from rnnbench.data.digits import Digits
from rnnbench.data.japanese_vowels import JapaneseVowels
from rnnbench.data.mnist1d import MNIST1D
from rnnbench.data.polyphonic import PolyphonicMusic
from rnnbench.data.sequential_images import SequentialImages
from rnnbench.data.task import Task
from rnnbench.data.timemachine import TimeMachine

__all__ = ["AddingProblem", "CopyMemory", "Digits", "InMemoryDataModule", "JapaneseVowels", "MNIST1D",
           "PolyphonicMusic", "SequentialImages", "Task", "TimeMachine"]
