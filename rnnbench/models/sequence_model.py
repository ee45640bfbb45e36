"""The model every run trains: encoder -> fused nn.RNN / nn.LSTM / nn.GRU -> a head shaped by the task."""

from __future__ import annotations

from torch import Tensor, nn

from rnnbench.data.task import Task
from rnnbench.errors import require, require_int
from rnnbench.models.encoders import build_encoder
from rnnbench.models.initialization import orthogonal_recurrent, set_forget_bias

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
NONLINEARITIES = ("tanh", "relu")
RECURRENT_INITS = ("default", "orthogonal")


class SequenceModel(nn.Module):
    """A recurrent network for any :class:`~rnnbench.data.task.Task`.

    Args:
        task: what the data means; fixes the input encoder's and the head's sizes.
        cell: ``rnn``, ``lstm`` or ``gru``: PyTorch's fused ``nn.RNN``, ``nn.LSTM``, ``nn.GRU``.
        hidden_size: H, features of each direction's hidden state.
        num_layers: L, stacked recurrent layers.
        bidirectional: run a second, time-reversed direction in every layer (D = 2).
        dropout: dropout between recurrent layers (PyTorch applies it to all but the last layer).
        nonlinearity: ``tanh`` or ``relu``, for ``cell=rnn`` only.
        embedding_size: ``None`` feeds inputs as they are (one-hot tokens); an int learns an
            embedding (tokens) or a linear projection (real inputs) of that size.
        forget_bias: LSTM only: the forget gate's total initial bias; ``None`` keeps PyTorch's init.
        recurrent_init: ``default`` (PyTorch's uniform init) or ``orthogonal`` ``W_hh`` blocks.

    Shapes, with B batch, T steps, C = ``task.output_size``:
        input: (B, T) int64 token ids, or (B, T, task.input_size) floats.
        output: per-step tasks (B, T, C); once-per-sequence tasks (B, C), or (B,) for regression
        (C = 1). Once-per-sequence heads read the last layer's final state of every direction
        (h_n: the forward direction after step T, the backward one after step 1), concatenated.
    """

    def __init__(self, task: Task, cell: str = "lstm", hidden_size: int = 64, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, nonlinearity: str = "tanh",
                 embedding_size: int | None = None, forget_bias: float | None = None,
                 recurrent_init: str = "default"):
        super().__init__()
        require(cell in CELLS, "cell", cell, f"one of {', '.join(CELLS)}")
        require(nonlinearity in NONLINEARITIES, "nonlinearity", nonlinearity, f"one of {', '.join(NONLINEARITIES)}")
        require_int(hidden_size, "hidden_size", 1)
        require_int(num_layers, "num_layers", 1)
        require(isinstance(bidirectional, bool), "bidirectional", bidirectional, "true or false")
        require(isinstance(dropout, (int, float)) and 0 <= dropout < 1, "dropout", dropout, "a number in [0, 1)")
        if embedding_size is not None:
            require_int(embedding_size, "embedding_size", 1)
        require(forget_bias is None or (cell == "lstm" and isinstance(forget_bias, (int, float))),
                "forget_bias", forget_bias, "null, or a number with cell=lstm")
        require(recurrent_init in RECURRENT_INITS, "recurrent_init", recurrent_init,
                f"one of {', '.join(RECURRENT_INITS)}")
        task.validate_model(bidirectional)

        self.task = task
        self.encoder, input_size = build_encoder(task, embedding_size)
        options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        self.rnn = CELLS[cell](input_size, hidden_size, num_layers, batch_first=True,
                               dropout=float(dropout) if num_layers > 1 else 0.0,
                               bidirectional=bidirectional, **options)
        if recurrent_init == "orthogonal":
            orthogonal_recurrent(self.rnn)
        if forget_bias is not None:
            set_forget_bias(self.rnn, float(forget_bias))
        self.num_directions = 2 if bidirectional else 1
        self.head = nn.Linear(hidden_size * self.num_directions, task.output_size)

    def encode(self, inputs: Tensor) -> Tensor:
        """Raw inputs -> the (B, T, input_size) float sequence the recurrent core reads."""
        return self.encoder(inputs)

    def readout(self, output: Tensor, h_n: Tensor) -> Tensor:
        """Predictions from the core's ``output`` (B, T, D * H) and final hidden state ``h_n`` (L * D, B, H)."""
        if self.task.per_step:
            return self.head(output)
        final = h_n[-self.num_directions:].transpose(0, 1).flatten(1)  # (B, D * H)
        prediction = self.head(final)
        return prediction.squeeze(-1) if self.task.output_size == 1 and self.task.loss == "mse" else prediction

    def forward(self, inputs: Tensor) -> Tensor:
        output, state = self.rnn(self.encode(inputs))
        h_n = state[0] if isinstance(state, tuple) else state
        return self.readout(output, h_n)
