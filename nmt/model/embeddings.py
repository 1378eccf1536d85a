"""Token ids → vectors: `nn.Embedding` is a lookup table, row n is the vector of id n.

The rows are ordinary parameters: backprop updates the rows of the ids in each batch (and,
with Adam's running moments or weight decay, may keep moving rows seen earlier). The padding
row is fixed at zero and never receives a gradient.
"""

from __future__ import annotations

import torch
from torch import nn

from nmt.tokenizer import PAD_ID


class Embeddings(nn.Module):
    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
        nn.init.normal_(self.table.weight, mean=0.0, std=dim**-0.5)
        with torch.no_grad():
            self.table.weight[PAD_ID].zero_()

    @property
    def weight(self) -> torch.Tensor:
        return self.table.weight  # (vocab, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.table(ids)  # (..., dim)
