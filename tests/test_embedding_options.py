"""`model.embeddings`: scale, freeze, share_src_tgt, pretrained word2vec/GloVe vectors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from conftest import PAIRS, TINY_VOCAB

from nmt.batching import collate
from nmt.checkpoint import load_checkpoint
from nmt.config import EmbeddingConfig, ModelConfig, load_config
from nmt.errors import NmtError
from nmt.loss import translation_loss
from nmt.model import Seq2Seq
from nmt.pretrained import PretrainedReport, apply_pretrained, load_pretrained
from nmt.tokenizer import EOS_ID, PAD_ID, Tokenizer, train_tokenizer

SRC_VOCAB, TGT_VOCAB = 30, 25
DIM = 16
SRC = [[5, 6, 7, 8], [9, 5]]  # the short sentence adds padding
TGT = [[10, 11], [12, 13, 14]]


def tiny_model(seed: int = 0, tie: bool = False, src_vocab: int = SRC_VOCAB, tgt_vocab: int = TGT_VOCAB,
               rnn_type: str = "gru", attention: str = "bahdanau", **embeddings) -> Seq2Seq:
    torch.manual_seed(seed)
    cfg = ModelConfig(embedding_size=DIM, encoder_hidden_size=16, decoder_hidden_size=32, attention_size=16,
                      dropout=0.0, tie_embeddings=tie, embeddings=EmbeddingConfig(**embeddings),
                      rnn_type=rnn_type, attention=attention)
    return Seq2Seq(cfg, src_vocab, tgt_vocab)


def train_steps(model: Seq2Seq, n: int = 3, weight_decay: float = 0.1, src=SRC, tgt=TGT) -> None:
    """Adam with weight decay and gradient clipping, as the trainer does it."""
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=weight_decay)
    batch = collate(src, tgt, list(range(len(src))))
    model.train()
    for _ in range(n):
        logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = translation_loss(logits, batch.tgt_out, 0.1) / batch.n_tgt_tokens
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()


def tables(model: Seq2Seq) -> dict[str, torch.Tensor]:
    return {side: w.detach().clone() for side, w in model.embedding_tables().items()}


# ----------------------------------------------------------------------------- freezing


@pytest.mark.parametrize("side", ["src", "tgt"])
def test_a_frozen_table_stays_bit_identical_through_adam_with_weight_decay(side):
    model = tiny_model(**{f"freeze_{side}": True})
    other = "tgt" if side == "src" else "src"
    before = tables(model)
    train_steps(model, n=4, weight_decay=0.1)
    after = tables(model)
    assert torch.equal(after[side], before[side])
    assert not torch.equal(after[other], before[other])
    frozen = model.embedding_tables()[side]
    assert not frozen.requires_grad and frozen.grad is None


def test_a_frozen_table_gets_no_optimizer_state():
    model = tiny_model(freeze_src=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05, weight_decay=0.1)
    batch = collate(SRC, TGT, [0, 1])
    logits, _ = model(batch.src, batch.src_lengths, batch.tgt_in)
    translation_loss(logits, batch.tgt_out, 0.1).backward()
    optimizer.step()
    assert model.src_embed.weight not in optimizer.state
    assert model.tgt_embed.weight in optimizer.state


def test_freezing_is_off_by_default():
    model = tiny_model()
    assert model.src_embed.weight.requires_grad and model.tgt_embed.weight.requires_grad


def test_a_frozen_tied_target_table_freezes_the_output_projection_too():
    model = tiny_model(tie=True, freeze_tgt=True)
    assert model.generator.weight is model.tgt_embed.weight
    before = tables(model)
    train_steps(model, n=3)
    assert torch.equal(model.generator.weight, before["tgt"])
    assert not torch.equal(model.src_embed.weight, before["src"])


@pytest.mark.parametrize("rnn_type, attention", [("gru", "bahdanau"), ("lstm", "luong_dot")])
def test_a_frozen_shared_table_stays_bit_identical(rnn_type, attention):
    model = tiny_model(src_vocab=SRC_VOCAB, tgt_vocab=SRC_VOCAB, share_src_tgt=True, freeze_src=True,
                       freeze_tgt=True, rnn_type=rnn_type, attention=attention)
    before = tables(model)
    encoder_before = model.encoder.rnn.weight_ih_l0.detach().clone()
    train_steps(model, n=3)
    assert torch.equal(model.src_embed.weight, before["src"])
    assert not torch.equal(model.encoder.rnn.weight_ih_l0, encoder_before)


# ----------------------------------------------------------------------------- padding row

PAD_CASES = [
    {},
    {"scale": True},
    {"tie": True},
    {"tie": True, "scale": True},
    {"share_src_tgt": True},
    {"share_src_tgt": True, "tie": True, "scale": True},
    {"freeze_src": True, "tie": True},
    {"share_src_tgt": True, "tie": True, "rnn_type": "lstm", "attention": "luong_general"},
]


@pytest.mark.parametrize("options", PAD_CASES, ids=lambda o: "+".join(o) or "plain")
def test_padding_row_stays_exactly_zero_through_training(options):
    options = dict(options)
    tie = options.pop("tie", False)
    vocab = {"tgt_vocab": SRC_VOCAB} if options.get("share_src_tgt") else {}
    model = tiny_model(tie=tie, **vocab, **options)
    train_steps(model, n=4, weight_decay=0.1)
    for side, w in model.embedding_tables().items():
        assert torch.all(w[PAD_ID] == 0.0), side
    ids = torch.tensor([[PAD_ID]])
    assert torch.all(model.src_embed(ids) == 0.0)


# ----------------------------------------------------------------------------- scale


def test_scale_multiplies_the_lookup_by_sqrt_d():
    model = tiny_model(scale=True)
    ids = torch.tensor([[5, 7, PAD_ID], [9, 1, 2]])
    out = model.src_embed(ids)
    assert torch.allclose(out, model.src_embed.weight[ids] * math.sqrt(DIM), rtol=0, atol=0)
    assert torch.allclose(model.tgt_embed(ids), model.tgt_embed.weight[ids] * math.sqrt(DIM), rtol=0, atol=0)


def test_without_scale_the_lookup_is_the_row():
    model = tiny_model()
    ids = torch.tensor([[5, 7, PAD_ID]])
    assert torch.equal(model.src_embed(ids), model.src_embed.weight[ids])


def test_scale_leaves_the_table_and_a_tied_projection_unscaled():
    plain, scaled = tiny_model(tie=True), tiny_model(tie=True, scale=True)
    assert torch.equal(plain.tgt_embed.weight, scaled.tgt_embed.weight)  # same seed, same init
    assert scaled.generator.weight is scaled.tgt_embed.weight


# ----------------------------------------------------------------------------- sharing


def test_shared_tables_are_one_parameter():
    model = tiny_model(tgt_vocab=SRC_VOCAB, share_src_tgt=True)
    assert model.src_embed is model.tgt_embed
    assert model.src_embed.weight is model.tgt_embed.weight
    n_shared = sum(p.numel() for p in model.parameters())
    n_separate = sum(p.numel() for p in tiny_model(tgt_vocab=SRC_VOCAB).parameters())
    assert n_separate - n_shared == SRC_VOCAB * DIM


def test_shared_and_tied_is_one_parameter_for_three_uses():
    model = tiny_model(tgt_vocab=SRC_VOCAB, share_src_tgt=True, tie=True)
    assert model.generator.weight is model.src_embed.weight is model.tgt_embed.weight


def test_a_shared_table_learns_from_both_sides_and_survives_a_state_dict_round_trip():
    model = tiny_model(tgt_vocab=SRC_VOCAB, share_src_tgt=True)
    before = model.src_embed.weight.detach().clone()
    # source ids 5..9, target ids 10..14: both sets of rows move in the one table
    train_steps(model, n=1, weight_decay=0.0)
    moved = set((before != model.src_embed.weight.detach()).any(dim=1).nonzero().squeeze(1).tolist())
    assert {5, 9, 10, 14} <= moved
    fresh = tiny_model(seed=1, tgt_vocab=SRC_VOCAB, share_src_tgt=True)
    fresh.load_state_dict(model.state_dict())
    assert fresh.src_embed.weight is fresh.tgt_embed.weight
    assert torch.equal(fresh.src_embed.weight, model.src_embed.weight)


def test_sharing_refuses_two_vocabulary_sizes():
    with pytest.raises(NmtError, match="share_src_tgt.*30.*25"):
        tiny_model(share_src_tgt=True)


# ----------------------------------------------------------------------------- config


def test_the_section_defaults(make_config):
    e = load_config(make_config()).model.embeddings
    assert e == EmbeddingConfig()
    assert (e.scale, e.freeze_src, e.freeze_tgt, e.share_src_tgt) == (False, False, False, False)
    assert e.pretrained_src is None and e.pretrained_tgt is None


def test_the_section_is_read_from_the_config_and_overrides(make_config):
    cfg = load_config(make_config(model={"embeddings": {"scale": True, "pretrained_src": "glove.txt"}}),
                      overrides=["model.embeddings.freeze_tgt=true"])
    e = cfg.model.embeddings
    assert e.scale and e.freeze_tgt and e.pretrained_src == "glove.txt" and not e.freeze_src


def test_a_misspelt_key_gets_did_you_mean(make_config):
    with pytest.raises(NmtError, match=r"unknown key 'model\.embeddings\.frezee_src'; "
                                       r"did you mean 'model\.embeddings\.freeze_src'\?"):
        load_config(make_config(model={"embeddings": {"frezee_src": True}}))


def test_a_wrong_type_names_the_key(make_config):
    with pytest.raises(NmtError, match="model.embeddings.scale.*expected bool"):
        load_config(make_config(model={"embeddings": {"scale": "yes"}}))
    with pytest.raises(NmtError, match="model.embeddings.pretrained_tgt"):
        load_config(make_config(model={"embeddings": {"pretrained_tgt": 3}}))


def test_sharing_without_a_joint_tokenizer_is_refused_naming_both_keys(make_config):
    with pytest.raises(NmtError) as e:
        load_config(make_config(model={"embeddings": {"share_src_tgt": True}}))
    assert "model.embeddings.share_src_tgt" in str(e.value) and "tokenizer.joint" in str(e.value)
    cfg = load_config(make_config(model={"embeddings": {"share_src_tgt": True}}, tokenizer={"joint": True}))
    assert cfg.model.embeddings.share_src_tgt


def test_sharing_refuses_freezing_only_one_side(make_config):
    with pytest.raises(NmtError, match="freeze_src.*freeze_tgt"):
        load_config(make_config(model={"embeddings": {"share_src_tgt": True, "freeze_src": True}},
                                tokenizer={"joint": True}))


def test_sharing_refuses_two_different_pretrained_files(make_config):
    with pytest.raises(NmtError, match="pretrained_src.*pretrained_tgt"):
        load_config(make_config(model={"embeddings": {"share_src_tgt": True, "pretrained_src": "a.txt",
                                                      "pretrained_tgt": "b.txt"}}, tokenizer={"joint": True}))


def test_the_section_survives_the_run_directory_round_trip(make_config, tmp_path):
    from nmt.config import save_config

    cfg = load_config(make_config(model={"embeddings": {"scale": True, "freeze_src": True}}))
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg


# ----------------------------------------------------------------------------- pretrained


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return train_tokenizer([p[0] for p in PAIRS], TINY_VOCAB)


def vec(k: int, dim: int = DIM) -> list[float]:
    return [(k * dim + j) / 8.0 for j in range(dim)]  # exact in float32


def write_vectors(path: Path, words: list[str], header: bool = False, dim: int = DIM) -> Path:
    lines = [f"{len(words)} {dim}"] if header else []
    lines += [w + " " + " ".join(f"{x:g}" for x in vec(k, dim)) for k, w in enumerate(words)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# "a": the pieces "▁a" and "a"; "t": the piece "▁t"; "e" and ".": exact pieces (and "▁." takes ".");
# "<unk>", "<s>", "</s>": specials, never taken; "zebra": not in the vocabulary
FILE_WORDS = ["a", "t", "e", ".", "<unk>", "<s>", "</s>", "zebra"]


def expected_rows(tok: Tokenizer, words: list[str]) -> dict[int, int]:
    """piece id → index of its word in `words`, by the documented rule."""
    rows = {}
    for i in range(EOS_ID + 1, len(tok)):
        piece = tok.id_to_piece(i)
        word = piece[1:] if piece.startswith("\u2581") else piece
        if word in words:
            rows[i] = words.index(word)
    return rows


@pytest.mark.parametrize("header", [False, True], ids=["glove", "word2vec"])
def test_pretrained_rows_equal_the_files_vectors_and_the_others_are_untouched(tok, tmp_path, header):
    path = write_vectors(tmp_path / "vectors.txt", FILE_WORDS, header=header)
    table = torch.nn.init.normal_(torch.empty(len(tok), DIM))
    before = table.clone()
    report = load_pretrained(path, tok, table, "src")
    rows = expected_rows(tok, FILE_WORDS)
    assert {tok.id_to_piece(i) for i in rows} >= {"\u2581a", "a", "\u2581t", "e", ".", "\u2581."}
    for i in range(len(tok)):
        if i in rows:
            assert torch.equal(table[i], torch.tensor(vec(rows[i]))), tok.id_to_piece(i)
        else:
            assert torch.equal(table[i], before[i]), tok.id_to_piece(i)
    assert report.covered == len(rows)
    assert report.total == len(tok) - 4
    assert report.dim == DIM and report.file_words == len(FILE_WORDS)
    assert "\u2581" in report.uncovered_examples  # the bare word-start piece matches no word
    assert not {"<unk>", "<s>", "</s>", "<pad>"} & set(report.uncovered_examples)


def test_glove_and_word2vec_files_load_the_same_rows(tok, tmp_path):
    a, b = torch.zeros(len(tok), DIM), torch.zeros(len(tok), DIM)
    load_pretrained(write_vectors(tmp_path / "g.txt", FILE_WORDS), tok, a)
    load_pretrained(write_vectors(tmp_path / "w.txt", FILE_WORDS, header=True), tok, b)
    assert torch.equal(a, b) and a.abs().sum() > 0


def test_the_report_is_one_line_with_the_counts(tok, tmp_path):
    path = write_vectors(tmp_path / "glove.txt", FILE_WORDS)
    report = load_pretrained(path, tok, torch.zeros(len(tok), DIM), "src")
    text = str(report)
    n = len(expected_rows(tok, FILE_WORDS))
    total = len(tok) - 4
    assert "\n" not in text
    assert text.startswith(f"pretrained src: {n}/{total} pieces covered ({100 * n / total:.1f}%) from {path} "
                           f"({len(FILE_WORDS)} words, dim {DIM}); the other {total - n} keep the random N(0, ")
    assert isinstance(report, PretrainedReport)


def test_a_word_with_spaces_after_the_first_line_is_read(tok, tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("t " + " ".join(["1"] * DIM) + "\n" + ". . . " + " ".join(["2"] * DIM) + "\n"
                    + "e\t" + " ".join(["3"] * DIM) + " \n", encoding="utf-8")
    table = torch.zeros(len(tok), DIM)
    report = load_pretrained(path, tok, table)
    assert report.file_words == 3
    assert torch.equal(table[tok.piece_to_id("e")], torch.full((DIM,), 3.0))


def test_the_first_occurrence_of_a_word_wins(tok, tmp_path):
    path = write_vectors(tmp_path / "v.txt", ["e", "e"])
    table = torch.zeros(len(tok), DIM)
    load_pretrained(path, tok, table)
    assert torch.equal(table[tok.piece_to_id("e")], torch.tensor(vec(0)))


def test_wrong_dimension_names_the_file_the_line_and_both_sizes(tok, tmp_path):
    path = write_vectors(tmp_path / "small.txt", FILE_WORDS, dim=8)
    with pytest.raises(NmtError, match=r"small\.txt: line 1: a vector of 8 values but 'model\.embedding_size' is 16"):
        load_pretrained(path, tok, torch.zeros(len(tok), DIM))
    path = write_vectors(tmp_path / "w2v.txt", FILE_WORDS, header=True, dim=8)
    with pytest.raises(NmtError, match=r"w2v\.txt: line 1: .*8 values.*'model\.embedding_size' is 16"):
        load_pretrained(path, tok, torch.zeros(len(tok), DIM))
    path = tmp_path / "short.txt"
    path.write_text("t " + " ".join(["1"] * DIM) + "\ne " + " ".join(["1"] * (DIM - 1)) + "\n", encoding="utf-8")
    with pytest.raises(NmtError, match=r"short\.txt: line 2: a vector of 15 values but 'model\.embedding_size' is 16"):
        load_pretrained(path, tok, torch.zeros(len(tok), DIM))


def test_a_non_numeric_value_names_the_file_and_line(tok, tmp_path):
    path = write_vectors(tmp_path / "v.txt", FILE_WORDS)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].rsplit(" ", 1)[0] + " 0.5x"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(NmtError, match=r"v\.txt: line 3: '0\.5x' is not a number"):
        load_pretrained(path, tok, torch.zeros(len(tok), DIM))


def test_a_nan_in_a_used_vector_is_refused(tok, tmp_path):
    path = tmp_path / "v.txt"
    path.write_text("e " + " ".join(["nan"] * DIM) + "\n", encoding="utf-8")
    with pytest.raises(NmtError, match=r"v\.txt: line 1: .*nan"):
        load_pretrained(path, tok, torch.zeros(len(tok), DIM))


def test_a_missing_file_is_named(tok, tmp_path):
    with pytest.raises(NmtError, match=r"nope\.txt: pretrained embeddings file not found"):
        load_pretrained(tmp_path / "nope.txt", tok, torch.zeros(len(tok), DIM))


def test_a_non_utf8_line_is_named(tok, tmp_path):
    path = write_vectors(tmp_path / "v.txt", FILE_WORDS)
    data = path.read_bytes().split(b"\n")
    data[3] = b"caf\xe9" + data[3][1:]
    path.write_bytes(b"\n".join(data))
    with pytest.raises(NmtError, match=r"v\.txt: line 4: not valid UTF-8"):
        load_pretrained(path, tok, torch.zeros(len(tok), DIM))


@pytest.mark.parametrize("content", ["", "\n\n", f"10 {DIM}\n"], ids=["empty", "blank", "header-only"])
def test_a_file_without_vectors_is_refused(tok, tmp_path, content):
    path = tmp_path / "v.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(NmtError, match=r"v\.txt: no word vectors"):
        load_pretrained(path, tok, torch.zeros(len(tok), DIM))


def test_apply_pretrained_loads_each_side_and_keeps_padding_zero(tok, tmp_path):
    src_file = write_vectors(tmp_path / "src.txt", FILE_WORDS)
    tgt_file = write_vectors(tmp_path / "tgt.txt", list(reversed(FILE_WORDS)))
    model = tiny_model(src_vocab=len(tok), tgt_vocab=len(tok), pretrained_src=str(src_file),
                       pretrained_tgt=str(tgt_file))
    reports = apply_pretrained(model, model.cfg, tok, tok)
    assert [r.side for r in reports] == ["src", "tgt"]
    e = tok.piece_to_id("e")
    assert torch.equal(model.src_embed.weight[e], torch.tensor(vec(FILE_WORDS.index("e"))))
    assert torch.equal(model.tgt_embed.weight[e], torch.tensor(vec(list(reversed(FILE_WORDS)).index("e"))))
    assert torch.all(model.src_embed.weight[:EOS_ID + 1] == tiny_model(src_vocab=len(tok),
                                                                        tgt_vocab=len(tok)).src_embed.weight[:4])
    assert torch.all(model.src_embed.weight[PAD_ID] == 0.0)


def test_apply_pretrained_does_nothing_without_files(tok):
    model = tiny_model(src_vocab=len(tok), tgt_vocab=len(tok))
    before = tables(model)
    assert apply_pretrained(model, model.cfg, tok, tok) == []
    assert all(torch.equal(before[s], w) for s, w in model.embedding_tables().items())


def test_apply_pretrained_loads_a_shared_table_once(tok, tmp_path):
    path = write_vectors(tmp_path / "v.txt", FILE_WORDS)
    model = tiny_model(src_vocab=len(tok), tgt_vocab=len(tok), share_src_tgt=True, pretrained_tgt=str(path))
    reports = apply_pretrained(model, model.cfg, tok, tok)
    assert [r.side for r in reports] == ["src+tgt"]
    assert torch.equal(model.tgt_embed.weight[tok.piece_to_id("e")], torch.tensor(vec(FILE_WORDS.index("e"))))


def test_frozen_pretrained_vectors_stay_exactly_the_files(tok, tmp_path):
    path = write_vectors(tmp_path / "v.txt", FILE_WORDS)
    model = tiny_model(src_vocab=len(tok), tgt_vocab=len(tok), pretrained_src=str(path), freeze_src=True)
    apply_pretrained(model, model.cfg, tok, tok)
    loaded = model.src_embed.weight.detach().clone()
    train_steps(model, n=3, src=[[5, 6, 7], [8, 9]], tgt=[[10, 11], [12]])
    assert torch.equal(model.src_embed.weight, loaded)
    e = tok.piece_to_id("e")
    assert torch.equal(model.src_embed.weight[e], torch.tensor(vec(FILE_WORDS.index("e"))))


# ----------------------------------------------------------------------------- through the trainer


def test_freezing_holds_through_the_trainer(make_config):
    """The trainer's Adam (weight decay, clipping) never touches a frozen table."""
    from nmt.trainer import train

    run = train(make_config(model={"embeddings": {"freeze_src": True}},
                            train={"max_steps": 4, "validate_every": 4, "save_every": 4, "weight_decay": 0.01}))
    init = torch.load(run / "embeddings_init.pt", weights_only=True)
    final = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert torch.equal(final["src_embed.table.weight"], init["src"])
    assert not torch.equal(final["tgt_embed.table.weight"], init["tgt"])
