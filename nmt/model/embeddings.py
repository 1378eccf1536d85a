"""Token ids → vectors: `nn.Embedding` is a lookup table, row n is the vector of id n.

The rows are ordinary parameters: backprop updates the rows of the ids in each batch (and,
with Adam's running moments or weight decay, may keep moving rows seen earlier). The padding
row is fixed at zero and never receives a gradient.

Rows start as N(0, std 1/sqrt(d)) for d = embedding size (the padding row at zero). Options
(config `model.embeddings`):

- `scale`: the lookup returns row × sqrt(d). The table itself is unchanged (a tied output
  projection still uses the unscaled rows); only what the encoder/decoder receive is scaled, so
  inputs start with std about 1 instead of 1/sqrt(d). Transformers do it so that token
  embeddings are not drowned by the positional encodings, and so that a table tied to the output
  projection (which keeps its rows small) still gives inputs of a useful size. Here it makes the
  GRU's input term W·x (W ~ U(±1/sqrt(h)), h hidden units) of size ~sqrt(d/3h) at the start
  instead of ~1/sqrt(3h), so the gates respond to the input from the first steps. Pretrained vectors are scaled as well:
  GloVe-sized rows (norm ~5) times sqrt(d) are large, so one seldom wants both.
- `freeze`: the table gets `requires_grad=False`: no gradient, so no optimiser step, Adam
  weight decay included (torch's Adam/AdamW skip parameters whose `.grad` is None), touches it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nmt.tokenizer import PAD_ID


class Embeddings(nn.Module):
    TABLE_KEY = "table.weight"  # the table's state-dict key inside this module (see `table`)

    def __init__(self, vocab_size: int, dim: int, scale: bool = False, freeze: bool = False) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab_size, dim, padding_idx=PAD_ID)
        nn.init.normal_(self.table.weight, mean=0.0, std=dim**-0.5)
        with torch.no_grad():
            self.table.weight[PAD_ID].zero_()
        self.scale = math.sqrt(dim) if scale else 1.0
        self.frozen = freeze
        self.table.weight.requires_grad_(not freeze)

    @property
    def weight(self) -> torch.Tensor:
        return self.table.weight  # (vocab, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self.table(ids)  # (..., dim)
        return out * self.scale if self.scale != 1.0 else out

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, frozen={self.frozen}"
