"""The whole network: embeddings → encoder → attention decoder → logits over the target vocabulary."""

from __future__ import annotations

import torch
from torch import nn

from nmt.config import ModelConfig
from nmt.errors import NmtError
from nmt.model.decoder import Decoder
from nmt.model.dropout import Dropout
from nmt.model.embeddings import Embeddings
from nmt.model.encoder import Encoder
from nmt.model.state import DecoderState
from nmt.tokenizer import PAD_ID


class Seq2Seq(nn.Module):
    # the embedding module of each side: the one place that names them, for `embedding_tables`
    # and for readers of checkpoints (`table_key`)
    EMBEDDINGS = {"src": "src_embed", "tgt": "tgt_embed"}
    # the model.* keys a checkpoint records (`architecture`), with what a checkpoint made before
    # they existed holds: GRU with Bahdanau
    ARCHITECTURE = {"rnn_type": "gru", "attention": "bahdanau"}

    def __init__(self, cfg: ModelConfig, src_vocab_size: int, tgt_vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        e = cfg.embeddings
        self.src_embed = Embeddings(src_vocab_size, cfg.embedding_size, e.scale, e.freeze_src)
        if e.share_src_tgt:
            # one module (one Parameter) for both sides; config.py requires tokenizer.joint
            if src_vocab_size != tgt_vocab_size:
                raise NmtError(
                    f"model.embeddings.share_src_tgt needs one vocabulary, got source {src_vocab_size} "
                    f"and target {tgt_vocab_size} ids; set 'tokenizer.joint: true'"
                )
            self.tgt_embed = self.src_embed
        else:
            self.tgt_embed = Embeddings(tgt_vocab_size, cfg.embedding_size, e.scale, e.freeze_tgt)
        self.encoder = Encoder(
            cfg.embedding_size, cfg.encoder_hidden_size, cfg.encoder_layers, cfg.dropout, cfg.rnn_type,
            fused=cfg.fused_encoder,
        )
        self.decoder = Decoder(
            cfg.embedding_size,
            self.encoder.output_size,
            cfg.decoder_hidden_size,
            cfg.decoder_layers,
            cfg.attention_size,
            cfg.dropout,
            fused=cfg.fused_decoder,
            input_feeding=cfg.input_feeding,
            rnn_type=cfg.rnn_type,
            attention=cfg.attention,
        )
        self.generator = nn.Linear(cfg.embedding_size, tgt_vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.generator.weight = self.tgt_embed.weight  # one (tgt_vocab, emb) table, two uses
            # padding_idx only shields the lookup; the projection would move the PAD row
            # (a frozen table gets no gradient at all, and a hook on it would be refused)
            if self.tgt_embed.weight.requires_grad:
                self.tgt_embed.weight.register_hook(lambda g: g.index_fill(0, self._pad_index(g), 0.0))
        self.dropout = Dropout(cfg.dropout)

    @staticmethod
    def _pad_index(g: torch.Tensor) -> torch.Tensor:
        return torch.tensor([PAD_ID], device=g.device)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> DecoderState:
        """src: (batch, src_len) ids → the decoder's initial state (with the encoder memory)."""
        mask = src != PAD_ID  # (batch, src_len)
        memory, final = self.encoder(self.dropout(self.src_embed(src)), src_lengths)
        return self.decoder.init_state(memory, final, mask)

    def forward(
        self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor, keep: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: logits (batch, tgt_len, tgt_vocab) and attention (batch, tgt_len, src_len).

        keep: (batch, tgt_len) bool; where given, the logits of those positions only, (n, tgt_vocab) in
        row-major order. Training passes its real target tokens: the output layer and the loss are a
        fifth of a step's work, and none of it is owed to padding."""
        state = self.encode(src, src_lengths)
        o, attention = self.decoder(self.dropout(self.tgt_embed(tgt_in)), state)
        return self.generator(o if keep is None else o[keep]), attention

    def decode_step(
        self, prev_tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor]:
        """prev_tokens (batch,) → log-probabilities (batch, tgt_vocab), next state, attention (batch, src_len)."""
        o, state, weights = self.decoder.step(self.tgt_embed(prev_tokens), state)
        return torch.log_softmax(self.generator(o), dim=-1), state, weights

    def architecture(self) -> dict[str, str]:
        """What a checkpoint of this model records, so that it loads only into the same (build.py)."""
        return {key: getattr(self.cfg, key) for key in self.ARCHITECTURE}

    def embedding_tables(self) -> dict[str, torch.Tensor]:
        """The source and target embedding matrices, by side (one tensor twice when shared)."""
        return {side: getattr(self, name).weight for side, name in self.EMBEDDINGS.items()}

    @classmethod
    def table_key(cls, side: str) -> str:
        """The state-dict key of a side's embedding table, so that a checkpoint's table can be read
        without building the model."""
        return f"{cls.EMBEDDINGS[side]}.{Embeddings.TABLE_KEY}"
