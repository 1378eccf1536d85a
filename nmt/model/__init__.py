"""The network, one concept a module, read in this order:

    embeddings.py  token ids → vectors
    encoder.py     bidirectional GRU over the source
    attention.py   Bahdanau additive attention
    state.py       what the decoder carries between steps
    decoder.py     the attention GRU decoder, step by step (the reference)
    fused.py       the decoder's fast one-layer training unroll (`model.fused_decoder`)
    seq2seq.py     the whole network: encode, decode, logits
    build.py       a model from a config, or from a checkpoint
"""

from nmt.model.build import build_model, check_architecture, load_model, snapshot_embeddings
from nmt.model.seq2seq import Seq2Seq

__all__ = ["Seq2Seq", "build_model", "check_architecture", "load_model", "snapshot_embeddings"]
