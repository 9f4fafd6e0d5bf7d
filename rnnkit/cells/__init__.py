"""One file per recurrence: the per-step equations and their reverse steps."""

from .base import Cell
from .gru import GRUCell
from .lstm import LSTMCell
from .simple import SimpleCell

__all__ = ["Cell", "SimpleCell", "LSTMCell", "GRUCell"]
