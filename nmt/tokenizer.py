"""Text ↔ vocabulary ids with sentencepiece.

The special ids are fixed in every model nmt trains, so that batches, the model and search can
rely on them without looking anything up:

    PAD_ID = 0   <pad>  padding; its embedding row stays zero (padding_idx)
    UNK_ID = 1   <unk>  a piece the model has never seen
    BOS_ID = 2   <s>    first decoder input
    EOS_ID = 3   </s>   end of a target sentence

Every other id is a piece of text; `WORD_MARK` is sentencepiece's sign of a word start in them.
"""

from __future__ import annotations

import io
import random
import re
from pathlib import Path

import sentencepiece as spm

from nmt.errors import NmtError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
N_SPECIAL = len(SPECIAL_IDS)  # ids below this are the specials; the pieces of text start here
WORD_MARK = "\u2581"  # "▁", sentencepiece's word-start marker: the space before a word ("▁king")


class Tokenizer:
    """One sentencepiece model: encode text to ids, decode ids to text."""

    def __init__(self, model_proto: bytes, path: str | Path | None = None) -> None:
        self.model_proto = model_proto
        self.path = path
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        specials = [self.sp.pad_id(), self.sp.unk_id(), self.sp.bos_id(), self.sp.eos_id()]
        if specials != list(SPECIAL_IDS):
            raise NmtError(f"{path or 'tokenizer'}: special ids are {specials}, nmt needs {list(SPECIAL_IDS)}")

    @classmethod
    def load(cls, path: str | Path) -> "Tokenizer":
        path = Path(path)
        try:
            proto = path.read_bytes()
        except FileNotFoundError:
            raise NmtError(f"{path}: tokenizer model not found") from None
        try:
            return cls(proto, path)
        except (RuntimeError, OSError):
            raise NmtError(f"{path}: not a valid sentencepiece model") from None

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.model_proto)

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        """Text → piece ids, without BOS/EOS."""
        return self.sp.encode(text, out_type=int)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, out_type=int)

    def pieces(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def decode(self, ids: list[int]) -> str:
        """Piece ids → detokenized text; specials (pad, bos, eos) are dropped."""
        return self.sp.decode([i for i in ids if i >= N_SPECIAL or i == UNK_ID])

    def id_to_piece(self, i: int) -> str:
        return self.sp.id_to_piece(i)

    def piece_to_id(self, piece: str) -> int:
        return self.sp.piece_to_id(piece)


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
