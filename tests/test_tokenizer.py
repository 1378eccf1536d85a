"""Tests for nmt/tokenizer.py: sentencepiece training, fixed special ids, encode/decode."""

from __future__ import annotations

import pytest

from conftest import PAIRS, TINY_VOCAB
from nmt.errors import NmtError
from nmt.tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, Tokenizer, train_tokenizer

EN = [p[0] for p in PAIRS]
FR = [p[1] for p in PAIRS]


@pytest.fixture(scope="module")
def en_tok() -> Tokenizer:
    return train_tokenizer(EN, TINY_VOCAB)


def test_special_ids_are_fixed():
    assert (PAD_ID, UNK_ID, BOS_ID, EOS_ID) == (0, 1, 2, 3)


def test_trained_model_has_the_fixed_special_pieces(en_tok):
    assert [en_tok.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert [en_tok.sp.pad_id(), en_tok.sp.unk_id(), en_tok.sp.bos_id(), en_tok.sp.eos_id()] == [0, 1, 2, 3]


def test_vocab_size_is_the_requested_one(en_tok):
    assert len(en_tok) == TINY_VOCAB


def test_encode_adds_no_bos_or_eos(en_tok):
    ids = en_tok.encode(EN[0])
    assert ids and BOS_ID not in ids and EOS_ID not in ids and PAD_ID not in ids


def test_encode_decode_round_trips_training_sentences(en_tok):
    for sentence in EN:
        assert en_tok.decode(en_tok.encode(sentence)) == sentence


def test_encode_batch_equals_encode_one_by_one(en_tok):
    assert en_tok.encode_batch(EN[:5]) == [en_tok.encode(s) for s in EN[:5]]


def test_decode_drops_pad_bos_and_eos(en_tok):
    ids = en_tok.encode(EN[3])
    assert en_tok.decode([BOS_ID] + ids + [EOS_ID, PAD_ID, PAD_ID]) == EN[3]


def test_unseen_character_encodes_to_unk(en_tok):
    assert UNK_ID in en_tok.encode("the cat eats a ζ .")


def test_bpe_model_round_trips_and_keeps_special_ids():
    tok = train_tokenizer(FR, 60, model_type="bpe")
    assert len(tok) == 60
    assert [tok.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    assert all(tok.decode(tok.encode(s)) == s for s in FR)


def test_bpe_learns_frequent_words_as_single_pieces():
    # with room for merges, BPE learns frequent words as single pieces
    tok = train_tokenizer(FR, 100, model_type="bpe")
    assert "▁poisson" in tok.pieces("le chat mange un poisson .")


def test_word_tokenizer_gives_each_word_one_piece_round_trips_and_keeps_the_special_ids():
    words = sorted({w for line in EN for w in line.split()})
    tok = train_tokenizer(EN, 4 + len(words), model_type="word")
    assert [tok.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    for line in EN:
        assert tok.pieces(line) == ["▁" + w for w in line.split()]  # a row per word, as the tutorial's Lang
        assert tok.decode(tok.encode(line)) == line
    assert {tok.id_to_piece(i)[1:] for i in range(4, len(tok))} == set(words)


def test_word_tokenizer_maps_an_unknown_or_rare_word_to_unk():
    tok = train_tokenizer(EN + ["the zebra eats ."], 4 + 10, model_type="word", hard_vocab_limit=False)
    assert len(tok) == 14  # the 10 most frequent words
    ids = tok.encode("the zebra eats an aardvark .")
    assert ids[1] == ids[4] == UNK_ID and tok.id_to_piece(ids[0]) == "▁the"


def test_joint_tokenizer_round_trips_both_languages():
    tok = train_tokenizer(EN + FR, 45)
    assert all(tok.decode(tok.encode(s)) == s for s in EN + FR)


def test_joint_tokenizer_via_the_trainer_saves_one_model_twice(make_config):
    from nmt.trainer import train

    cfg = make_config(tokenizer={"joint": True, "src_vocab_size": 45}, train={"max_steps": 1, "validate_every": 1})
    run = train(cfg)
    src = (run / "tokenizer" / "src.model").read_bytes()
    assert src == (run / "tokenizer" / "tgt.model").read_bytes()
    tok = Tokenizer.load(run / "tokenizer" / "src.model")
    assert len(tok) == 45
    assert tok.decode(tok.encode(FR[0])) == FR[0] and tok.decode(tok.encode(EN[0])) == EN[0]


def test_vocab_too_large_names_the_key_and_the_limit():
    with pytest.raises(NmtError) as e:
        train_tokenizer(EN, 1000, vocab_key="key 'tokenizer.tgt_vocab_size'")
    msg = str(e.value)
    assert "'tokenizer.tgt_vocab_size' is 1000" in msg
    assert "at most" in msg


def test_vocab_too_large_via_the_trainer_names_the_config_key(make_config):
    from nmt.trainer import train

    with pytest.raises(NmtError, match="tokenizer.tgt_vocab_size' is 5000"):
        train(make_config(tokenizer={"tgt_vocab_size": 5000}))


def test_soft_vocab_limit_takes_what_the_text_allows():
    tok = train_tokenizer(EN, 1000, hard_vocab_limit=False)
    assert 4 < len(tok) < 1000


def test_vocab_smaller_than_the_alphabet_is_an_nmt_error():
    with pytest.raises(NmtError, match="sentencepiece training failed"):
        train_tokenizer(EN, 10)


def test_save_and_load_give_identical_ids(tmp_path, en_tok):
    en_tok.save(tmp_path / "en.model")
    loaded = Tokenizer.load(tmp_path / "en.model")
    assert len(loaded) == len(en_tok)
    assert loaded.encode_batch(EN) == en_tok.encode_batch(EN)
    assert loaded.model_proto == en_tok.model_proto


def test_training_is_deterministic():
    assert train_tokenizer(EN, TINY_VOCAB).model_proto == train_tokenizer(EN, TINY_VOCAB).model_proto


def test_max_sentences_subsamples_deterministically_by_seed():
    a = train_tokenizer(EN + FR, 40, max_sentences=100, seed=3, hard_vocab_limit=False)
    b = train_tokenizer(EN + FR, 40, max_sentences=100, seed=3, hard_vocab_limit=False)
    assert a.model_proto == b.model_proto


def test_loading_a_missing_model_is_an_nmt_error(tmp_path):
    with pytest.raises(NmtError, match="not found"):
        Tokenizer.load(tmp_path / "nope.model")


def test_loading_a_garbage_model_is_an_nmt_error(tmp_path):
    (tmp_path / "bad.model").write_bytes(b"not a sentencepiece model at all")
    with pytest.raises(NmtError, match="not a valid sentencepiece model"):
        Tokenizer.load(tmp_path / "bad.model")


def test_a_word_vocabulary_is_known_as_one_and_shows_its_words():
    from conftest import PAIRS

    words = train_tokenizer([en for en, _ in PAIRS], 30, model_type="word", hard_vocab_limit=False)
    pieces = train_tokenizer([en for en, _ in PAIRS], 30)
    assert words.word_level and not pieces.word_level
    assert words.show("▁king") == "king" and pieces.show("▁king") == "▁king" and words.show("▁") == "▁"
