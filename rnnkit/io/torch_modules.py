"""PyTorch modules that ``to_torch`` builds for whole rnnkit models (imports torch).

A whole model becomes a plain ``torch.nn.Sequential`` of PyTorch's own modules
(nn.Embedding, nn.Linear, nn.Dropout, nn.Tanh/Sigmoid/ReLU/Softmax/...), with each
recurrent layer inside an ``RNNBlock``: the thin adapter that makes nn.RNN/LSTM/GRU
fit in a Sequential (they return ``(output, h_n)``) and that gives them Keras's
conventions (go_backwards, the final state as output, merge modes).
"""

from __future__ import annotations

import torch
from torch import nn


class RNNBlock(nn.Module):
    """``rnn`` (a batch-first nn.RNN/LSTM/GRU) as one step of an nn.Sequential.

    return_sequences  True: the output sequence (N, T, dirs*H); False: the final
                      hidden state of the last layer (N, dirs*H), both directions
                      concatenated (torch.cat([h_n[-2], h_n[-1]], -1)), as Keras's
                      Bidirectional(return_sequences=False) gives
    go_backwards      run over the reversed sequence; the output sequence stays in
                      processing (reversed) order, as in Keras
    merge_mode        for a bidirectional rnn: 'concat' (PyTorch's own), 'sum',
                      'mul' or 'ave' of the two directions' outputs
    """

    def __init__(self, rnn, return_sequences=False, go_backwards=False, merge_mode="concat"):
        super().__init__()
        if not isinstance(rnn, (nn.RNN, nn.LSTM, nn.GRU)) or not rnn.batch_first:
            raise TypeError("RNNBlock wraps a batch_first nn.RNN, nn.LSTM or nn.GRU")
        if merge_mode not in ("concat", "sum", "mul", "ave"):
            raise ValueError(
                f"RNNBlock: merge_mode must be 'concat', 'sum', 'mul' or 'ave'; got {merge_mode!r}"
            )
        self.rnn = rnn
        self.return_sequences = bool(return_sequences)
        self.go_backwards = bool(go_backwards)
        self.merge_mode = merge_mode

    def extra_repr(self):
        return (
            f"return_sequences={self.return_sequences}, go_backwards={self.go_backwards}, "
            f"merge_mode={self.merge_mode!r}"
        )

    def forward(self, x):
        if self.go_backwards:
            x = torch.flip(x, dims=[1])
        out, h = self.rnn(x)
        if isinstance(h, tuple):  # LSTM: (h_n, c_n)
            h = h[0]
        if self.return_sequences:
            y = out
        else:
            dirs = 2 if self.rnn.bidirectional else 1
            y = torch.cat(list(h[-dirs:]), dim=-1)
        if self.rnn.bidirectional and self.merge_mode != "concat":
            a, b = y.chunk(2, dim=-1)
            y = {"sum": lambda: a + b, "mul": lambda: a * b, "ave": lambda: (a + b) * 0.5}[
                self.merge_mode
            ]()
        return y
