"""Tests for nmt/model/encoder.py: a bidirectional GRU over packed sequences."""

from __future__ import annotations

import pytest
import torch

from nmt.model.encoder import Encoder

EMB, HIDDEN = 8, 12


def encoder(layers: int = 1) -> Encoder:
    torch.manual_seed(0)
    return Encoder(EMB, HIDDEN, layers, dropout=0.3).eval()


def padded_batch(lengths: list[int], seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(len(lengths), max(lengths), EMB, generator=g)
    for i, n in enumerate(lengths):
        x[i, n:] = 0.0
    return x


def test_output_shapes():
    outputs, final = encoder()(padded_batch([5, 3]), torch.tensor([5, 3]))
    assert outputs.shape == (2, 5, 2 * HIDDEN)
    assert final.shape == (2, 2 * HIDDEN)
    assert encoder().output_size == 2 * HIDDEN


def test_outputs_are_zero_on_padding():
    outputs, _ = encoder()(padded_batch([5, 3]), torch.tensor([5, 3]))
    assert torch.all(outputs[1, 3:] == 0.0)


@pytest.mark.parametrize("layers", [1, 2])
def test_sentence_alone_equals_sentence_padded_in_a_batch(layers):
    enc = encoder(layers)
    lengths = [7, 3, 9, 5]  # unsorted, the short one (3) in the middle
    x = padded_batch(lengths)
    with torch.no_grad():
        out_batch, final_batch = enc(x, torch.tensor(lengths))
        for i, n in enumerate(lengths):
            out_alone, final_alone = enc(x[i : i + 1, :n], torch.tensor([n]))
            torch.testing.assert_close(out_batch[i, :n], out_alone[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(final_batch[i], final_alone[0], atol=1e-6, rtol=0)


def test_padding_values_do_not_leak_into_real_positions():
    enc = encoder()
    lengths = torch.tensor([6, 2])
    x = padded_batch([6, 2])
    noisy = x.clone()
    noisy[1, 2:] = 100.0
    with torch.no_grad():
        a, fa = enc(x, lengths)
        b, fb = enc(noisy, lengths)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(fa, fb, atol=1e-6, rtol=0)


@pytest.mark.parametrize("layers", [1, 2])
def test_final_state_is_forward_last_and_backward_first_of_the_top_layer(layers):
    enc = encoder(layers)
    with torch.no_grad():
        outputs, final = enc(padded_batch([4, 2]), torch.tensor([4, 2]))
    # forward half: the output at the last real position; backward half: the output at position 0
    for i, n in enumerate([4, 2]):
        torch.testing.assert_close(final[i, :HIDDEN], outputs[i, n - 1, :HIDDEN])
        torch.testing.assert_close(final[i, HIDDEN:], outputs[i, 0, HIDDEN:])
