"""Text → validated sentence pairs, from two aligned files or one tab-separated file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nmt.config import DataConfig
from nmt.errors import NmtError
from nmt.files import read_text, split_lines


@dataclass
class Corpus:
    """Aligned sentence pairs plus what loading had to skip, for the report."""

    src: list[str]
    tgt: list[str]
    name: str
    empty_dropped: int = 0  # pairs with an empty side

    def __len__(self) -> int:
        return len(self.src)


def read_lines(path: str | Path, strip: bool = True) -> list[str]:
    """Read a UTF-8 text file into lines (stripped, or with only a CR removed); invalid UTF-8
    names the line."""
    return split_lines(read_text(path), strip)


def corpus_paths(spec: str, cfg: DataConfig) -> list[Path]:
    """The files of a split: <prefix>.<src_lang> and <prefix>.<tgt_lang>, or the one .tsv file."""
    if cfg.format == "tsv":
        return [Path(spec)]
    return [Path(f"{spec}.{cfg.src_lang}"), Path(f"{spec}.{cfg.tgt_lang}")]


def load_corpus(spec: str, cfg: DataConfig, name: str) -> Corpus:
    """Load the split `spec` (a prefix, or a .tsv path) in the configured direction."""
    if cfg.format == "tsv":
        (path,) = corpus_paths(spec, cfg)
        src_col = cfg.tsv_columns.index(cfg.src_lang)
        tgt_col = cfg.tsv_columns.index(cfg.tgt_lang)
        src, tgt = [], []
        for i, line in enumerate(read_lines(path, strip=False), start=1):
            if not line.strip():
                src.append("")
                tgt.append("")
                continue
            cols = line.split("\t")
            if len(cols) < len(cfg.tsv_columns):
                raise NmtError(
                    f"{path}: line {i}: expected {len(cfg.tsv_columns)} tab-separated columns "
                    f"({', '.join(cfg.tsv_columns)}), found {len(cols)}"
                )
            src.append(cols[src_col].strip())
            tgt.append(cols[tgt_col].strip())
    else:
        src_path, tgt_path = corpus_paths(spec, cfg)
        src, tgt = read_lines(src_path), read_lines(tgt_path)
        if len(src) != len(tgt):
            raise NmtError(
                f"{src_path} has {len(src)} lines but {tgt_path} has {len(tgt)}: "
                "the two sides of a parallel corpus must be aligned line by line"
            )
    keep = [i for i in range(len(src)) if src[i] and tgt[i]]
    if not keep:
        where = " and ".join(str(p) for p in corpus_paths(spec, cfg))
        raise NmtError(f"{where}: the {name} corpus has no sentence pairs")
    return Corpus(
        src=[src[i] for i in keep],
        tgt=[tgt[i] for i in keep],
        name=name,
        empty_dropped=len(src) - len(keep),
    )
