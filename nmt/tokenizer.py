"""Training a sentencepiece model with nmt's special ids. The ids and the `Tokenizer` wrapper are
nmt_runtime's (runtime/nmt_runtime/tokenizer.py), the layer an export translates with; they are
named here too, so that nmt's modules import them from one place."""

from __future__ import annotations

import io
import random
import re

import sentencepiece as spm

from nmt.errors import NmtError
from nmt_runtime.tokenizer import (  # noqa: F401  (re-exported)
    BOS_ID, EOS_ID, N_SPECIAL, PAD_ID, SPECIAL_IDS, UNK_ID, WORD_MARK, Tokenizer,
)

_TOO_HIGH = re.compile(r"Vocabulary size too high \((\d+)\)\. Please set it to a value <= (\d+)")


def train_tokenizer(
    sentences: list[str],
    vocab_size: int,
    model_type: str = "unigram",
    character_coverage: float = 1.0,
    max_sentences: int = 1_000_000,
    seed: int = 0,
    hard_vocab_limit: bool = True,
    vocab_key: str = "key 'tokenizer.src_vocab_size'",
) -> Tokenizer:
    """Train a sentencepiece model in memory on `sentences`.

    More than `max_sentences` are subsampled with `seed` here (not by sentencepiece) so that the
    same data and seed always give the same model.
    """
    if len(sentences) > max_sentences:
        sentences = random.Random(seed).sample(sentences, max_sentences)
    buf = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences),
            model_writer=buf,
            vocab_size=vocab_size,
            model_type=model_type,
            character_coverage=character_coverage,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece="<pad>",
            unk_piece="<unk>",
            bos_piece="<s>",
            eos_piece="</s>",
            hard_vocab_limit=hard_vocab_limit,
            input_sentence_size=0,  # use everything we pass
            num_threads=1,  # deterministic
            minloglevel=2,
        )
    except RuntimeError as e:
        m = _TOO_HIGH.search(str(e))
        if m:
            raise NmtError(
                f"{vocab_key} is {vocab_size} but the training text can fill at most "
                f"{m.group(2)} pieces; lower it (or set 'tokenizer.hard_vocab_limit: false')"
            ) from None
        raise NmtError(f"sentencepiece training failed: {str(e).splitlines()[0]}") from None
    return Tokenizer(buf.getvalue())
