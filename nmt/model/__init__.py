"""The network, one concept a module, read in this order:

    embeddings.py  token ids → vectors
    dropout.py     dropout with its mask drawn from uniform numbers (faster than bernoulli_ on some CPUs)
    cells.py       the recurrent cell, GRU or LSTM (`model.rnn_type`)
    encoder.py     bidirectional RNN over the source
    fused_encoder.py  its fast training path for one GRU layer (`model.fused_encoder`)
    attention.py   Bahdanau's and Luong's attentions behind one interface (`model.attention`)
    state.py       what the decoder carries between steps
    decoder.py     the attention decoder, step by step (the reference), and its unroll paths
    fused.py       the fast training unroll of one GRU layer with Bahdanau (`model.fused_decoder`)
    seq2seq.py     the whole network: encode, decode, logits
    build.py       a model from a config, or from a checkpoint
"""

from nmt.model.build import build_model, check_architecture, load_model, snapshot_embeddings
from nmt.model.seq2seq import Seq2Seq

__all__ = ["Seq2Seq", "build_model", "check_architecture", "load_model", "snapshot_embeddings"]
