"""The network, one concept a module: embeddings, encoder, attention, decoder, seq2seq."""

from nmt.model.seq2seq import Seq2Seq

__all__ = ["Seq2Seq"]
