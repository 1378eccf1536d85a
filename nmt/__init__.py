"""nmt: neural machine translation with a GRU encoder, Bahdanau attention and a visible nn.Embedding.

The small public API:

    from nmt import Translator, train, load_config, NmtError
    run_dir = train("configs/toy.yaml", overrides={"train.max_steps": 100})
    Translator.load(run_dir).translate(["the king eats ."], beam=5)
"""

from nmt.config import load_config
from nmt.errors import NmtError

__version__ = "0.1.0"


def __getattr__(name: str):
    # Import the heavy parts (torch, sentencepiece) only when they are used.
    if name in ("Translator", "train"):
        from nmt.torch_version import require_torch

        require_torch()  # an older torch: one line saying so, before a puzzling error deep in it
    if name == "Translator":
        from nmt.translate import Translator

        return Translator
    if name == "train":
        from nmt.trainer import train

        return train
    raise AttributeError(f"module 'nmt' has no attribute {name!r}")


__all__ = ["Translator", "train", "load_config", "NmtError", "__version__"]
