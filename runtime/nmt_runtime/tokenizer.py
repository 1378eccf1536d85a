"""Text ↔ vocabulary ids with sentencepiece (training a tokenizer is nmt's: nmt/tokenizer.py).

The special ids are fixed in every model nmt trains, so that batches, the model and search can
rely on them without looking anything up:

    PAD_ID = 0   <pad>  padding; its embedding row stays zero (padding_idx)
    UNK_ID = 1   <unk>  a piece the model has never seen
    BOS_ID = 2   <s>    first decoder input
    EOS_ID = 3   </s>   end of a target sentence

Every other id is a piece of text; `WORD_MARK` is sentencepiece's sign of a word start in them.
"""

from __future__ import annotations

from pathlib import Path

import sentencepiece as spm

from nmt_runtime.errors import NmtError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
SPECIAL_IDS = (PAD_ID, UNK_ID, BOS_ID, EOS_ID)
N_SPECIAL = len(SPECIAL_IDS)  # ids below this are the specials; the pieces of text start here
SIDES = ("src", "tgt")  # a model's two tokenizers (and embedding tables): source and target
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
        # a word vocabulary (tokenizer.type: word): every piece of text is a whole word, "▁" and the
        # word; unigram and BPE always hold single characters, which never start with it
        size = self.sp.get_piece_size()
        self.word_level = size > N_SPECIAL and all(
            self.sp.id_to_piece(i).startswith(WORD_MARK) for i in range(N_SPECIAL, size))

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

    def show(self, piece: str) -> str:
        """A piece as the lab, the page and the exports show it: the word itself in a word
        vocabulary ("king", not sentencepiece's "▁king"), else the piece as it is."""
        return shown(self, piece)


def shown(tokenizer: object, piece: str) -> str:
    """`Tokenizer.show` for any tokenizer (a stand-in without `word_level` shows pieces as they are)."""
    if getattr(tokenizer, "word_level", False) and piece.startswith(WORD_MARK) and len(piece) > 1:
        return piece[1:]
    return piece
