"""CPU speed benchmark of the nmt model: training throughput and decoding speed.

    python scripts/benchmark.py CONFIG [--steps N] [--warmup W] [--json OUT]
                                       [--decode-sentences K] [--threads T] [--precision P]
                                       [--profile N] [--matmul] [--quantize int8] [--compile]
                                       [--set KEY.PATH=VALUE ...]

What it does, with the config's settings throughout:

1. prepares the config's corpus as `nmt prepare` does (or finds it prepared, in
   `data.prepared_dir`), and builds the trainer's length-filtered training stream from it
   (`nmt.data.training_data(...).stream`: `train.batch_tokens`, `train.batch_size`, `train.seed`);
2. builds the model with random initialisation (seeded with `train.seed`, no pretrained vectors);
3. runs W warm-up then N timed training steps — forward, label-smoothed summed loss
   (`nmt.loss.translation_loss`), backward of loss / target tokens, gradient clipping, Adam step:
   `nmt.trainer.update`, the trainer's own step — all inside `nmt.cpu.flush_denormals()`;
   with `--precision bf16`, the forward pass runs under CPU bf16 autocast (training and decoding),
   to decide whether bf16 pays off on this CPU; with `--precision auto`, first what `train.precision:
   auto` picks here for this model (nmt/precision.py: its measurement on the stream's next batches,
   not cached), then the run at that precision; with `--compile`, the training steps call
   `torch.compile(model, dynamic=True)` (inductor, the default backend) instead of the model, to
   measure that lever: the warm-up steps then include the compilation, timed apart as `warmup_s`;
   with `--profile N`, N more training steps run under torch.profiler and the top operators by
   self CPU time are printed (where the time goes between the matmuls); with `--matmul`, what
   torch.matmul alone reaches here (fp32 and bf16, on shapes like the model's) is printed, to
   put `train_gflops_per_s` in proportion;
4. decodes the first K sentences of the prepared `data.test` split (default: all) in eval mode with greedy search
   and with beam search (beam 5), in `eval_batches` of `decode.batch_size`, timing each;
   with `--quantize int8`, then once more (after all else) with the model quantized as `nmt translate
   --quantize int8` does it (`nmt.translate.quantize_int8`), to compare the two speeds side by side.
   The model here has had only the timed training steps, so its outputs (and their lengths) can
   differ between the two: for BLEU and speed on a trained run, `nmt evaluate RUN --quantize int8`.

FLOPs (`flops_per_tgt_token`) are an analytical, approximate count. With E the embedding size,
H the encoder's hidden size per direction, M = 2H the encoder memory size, D the decoder's hidden
size, A the attention size, V the target vocabulary and G the gates of the cell (3 for a GRU, 4
for an LSTM), the multiply-adds of every matmul in the forward pass are

    encoder, per source token:   2 directions × G × H × (input + H) per layer
                                 (input = E for the first layer, 2H above)
    attention keys, per source token:  M × A   Bahdanau's W_k h_j, projected once per sentence
                                       M × D   luong_general's W_a h_j; luong_dot: none
    decoder, per target token:   D × A                  Bahdanau's query projection W_q s
                                 S × A                  Bahdanau's energy vᵀ tanh(·) over S source positions
                                 S × D                  Luong's score sᵀ(W_a h_j) over S source positions
                                 S × M                  context bmm over S source positions
                                 G × D × (I + D)        the RNN's first layer, I = E + M with Bahdanau
                                                        (input [emb; context]), E with Luong; E more
                                                        with model.input_feeding (o_{t-1} in the input)
                                 G × D × 2D             each further decoder layer
                                 (D + M + E) × E        readout (Bahdanau's deep output; Luong's
                                                        tanh(W [c; s]): (M + D) × E)
                                 E × V                  output projection to the vocabulary
    bridge, per sentence:        M × states × layers × D   (states: 2 for an LSTM's h and c; amortised
                                                        over the mean target length)

tests/test_benchmark.py holds each term equal to the weights of its matmul in the built model.
Per target token: decoder + r × (encoder + keys) + bridge / T̄, where r = source tokens / target
tokens and S (mean source length) and T̄ (mean target length) are measured on the timed training
batches (real lengths with EOS, not padded ones). Training ≈ 3 × forward (the backward pass costs
about twice the forward), and FLOPs = 2 × multiply-adds. Left out: elementwise ops (gate
nonlinearities, tanh, dropout, adds), the softmaxes and the loss, embedding lookups, the work on
padding (padded batches and the attention over padded source positions), and the optimiser.
So it is a lower bound on the work done and `train_gflops_per_s` an approximate utilisation figure.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

# run from a checkout without installing: make `nmt` importable
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nmt.batching import BatchStream, eval_batches
from nmt.config import Config, load_config
from nmt.cpu import flush_denormals
from nmt.errors import NmtError
from nmt.model import Seq2Seq, build_model
from nmt.search import beam_search, greedy_search
from nmt.data import training_data
from nmt.prepare import prepare
from nmt.optim import LRSchedule, make_optimizer, update
from nmt.precision import AUTOCAST_DTYPES, choose_precision, time_steps, upcoming_batches
from nmt.translate import quantize_int8

BEAM_SIZE = 5


@dataclass
class TrainTiming:
    """What the timed training steps measured."""

    steps: int
    seconds: float
    src_tokens: int
    tgt_tokens: int
    sentences: int
    warmup_s: float = 0.0  # the untimed warm-up steps (with --compile: the compilation)

    @property
    def ms_per_step(self) -> float:
        return 1000 * self.seconds / self.steps

    @property
    def src_per_tgt(self) -> float:
        return self.src_tokens / self.tgt_tokens

    @property
    def mean_src_len(self) -> float:
        return self.src_tokens / self.sentences

    @property
    def mean_tgt_len(self) -> float:
        return self.tgt_tokens / self.sentences


def time_training(
    model: Seq2Seq, stream: BatchStream, cfg: Config, steps: int, warmup: int, autocast: torch.dtype | None = None,
    compiled: bool = False,
) -> TrainTiming:
    """W warm-up then N timed training steps on the stream's batches (batching not timed)."""
    tc = cfg.train
    optimizer = make_optimizer(model, tc)
    schedule = LRSchedule(tc)
    step_model = torch.compile(model, dynamic=True) if compiled else model
    t_warm = time.perf_counter()
    for step in range(1, warmup + 1):
        update(step_model, optimizer, stream.next_batch()[0], schedule.lr(step), cfg.train, autocast)
    warmup_s = time.perf_counter() - t_warm
    seconds, src_tokens, tgt_tokens, sentences = 0.0, 0, 0, 0
    for step in range(warmup + 1, warmup + steps + 1):
        batch = stream.next_batch()[0]
        t0 = time.perf_counter()
        update(step_model, optimizer, batch, schedule.lr(step), cfg.train, autocast)
        seconds += time.perf_counter() - t0
        src_tokens += batch.n_src_tokens
        tgt_tokens += batch.n_tgt_tokens
        sentences += len(batch)
    return TrainTiming(steps, seconds, src_tokens, tgt_tokens, sentences, warmup_s)


MATMUL_SHAPES = [(1024, 512, 8000), (64, 1536, 512), (2048, 2048, 2048)]  # M×K @ K×N


def matmul_gflops(dtype: torch.dtype, repeats: int = 10) -> dict[str, float]:
    """GFLOP/s of torch.matmul alone on shapes like the model's (output layer, GRU gates, square)."""
    out = {}
    for m, k, n in MATMUL_SHAPES:
        a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
        for _ in range(3):
            a @ b
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        out[f"{m}x{k}x{n}"] = 2 * m * k * n * repeats / (time.perf_counter() - t0) / 1e9
    return out


def profile_training(model: Seq2Seq, stream: BatchStream, cfg: Config, steps: int,
                     autocast: torch.dtype | None = None) -> str:
    """The top operators by self CPU time over `steps` training steps."""
    tc = cfg.train
    optimizer = make_optimizer(model, tc)
    batches = [stream.next_batch()[0] for _ in range(steps)]
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for batch in batches:
            update(model, optimizer, batch, tc.lr, tc, autocast)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)


@torch.inference_mode()
def time_decoding(model: Seq2Seq, src_ids: list[list[int]], cfg: Config, beam: int) -> float:
    """Seconds to decode `src_ids` (greedy when beam is 1, beam search otherwise)."""
    model.eval()
    dec = cfg.decode
    t0 = time.perf_counter()
    for batch in eval_batches(src_ids, None, dec.batch_size):
        if beam == 1:
            greedy_search(model, batch.src, batch.src_lengths, dec.max_len_ratio, dec.max_len_extra)
        else:
            beam_search(
                model,
                batch.src,
                batch.src_lengths,
                beam_size=beam,
                length_penalty=dec.length_penalty,
                max_len_ratio=dec.max_len_ratio,
                max_len_extra=dec.max_len_extra,
            )
    return time.perf_counter() - t0


CELL_GATES = {"gru": 3, "lstm": 4}  # G: the gates of model.rnn_type, each a matmul of the RNN's


def forward_macs_per_tgt_token(cfg: Config, tgt_vocab: int, timing: TrainTiming) -> float:
    """Multiply-adds of the forward pass per target token (see the module docstring)."""
    m = cfg.model
    E, H, D, A, V = m.embedding_size, m.encoder_hidden_size, m.decoder_hidden_size, m.attention_size, tgt_vocab
    M, G = 2 * H, CELL_GATES[m.rnn_type]
    states = 2 if m.rnn_type == "lstm" else 1
    S = timing.mean_src_len
    encoder = sum(2 * G * H * ((E if layer == 0 else 2 * H) + H) for layer in range(m.encoder_layers))
    feed = E if m.input_feeding else 0
    if m.attention == "bahdanau":
        keys, attend, rnn_input, readout = M * A, D * A + S * A, E + M + feed, (D + M + E) * E
    else:  # Luong's: the score is a dot product with s_t, the RNN's input has no context
        keys, attend, rnn_input, readout = (M * D if m.attention == "luong_general" else 0), S * D, E + feed, (M + D) * E
    rnn = G * D * (rnn_input + D) + (m.decoder_layers - 1) * G * D * (2 * D)
    decoder = attend + S * M + rnn + readout + E * V
    bridge = M * states * m.decoder_layers * D
    return decoder + timing.src_per_tgt * (encoder + keys) + bridge / timing.mean_tgt_len


def peak_rss_mib() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if platform.system() == "Darwin" else rss / 1024


def run(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    """Build everything from the config, time training and decoding; return the results (the
    JSON's keys) and the number of test sentences decoded."""
    cfg = load_config(args.config, args.overrides)
    threads = args.threads or cfg.train.threads
    if threads:
        torch.set_num_threads(threads)
    d = cfg.data
    if not d.test:
        raise NmtError(f"{args.config}: key 'data.test' is not set; the benchmark decodes the test set")
    dataset = prepare(cfg, str(args.config), say=lambda line: print(line, file=sys.stderr)).dataset
    src_tok, tgt_tok = dataset.tokenizers()
    stream = training_data(cfg, dataset, str(args.config)).stream(cfg)
    test = dataset.split("test")

    torch.manual_seed(cfg.train.seed)
    random.seed(cfg.train.seed)
    model = build_model(cfg, len(src_tok), len(tgt_tok))
    params = sum(p.numel() for p in model.parameters())

    n_test = len(test) if args.decode_sentences is None else min(args.decode_sentences, len(test))
    test_ids = test.all("src", n_test)
    with flush_denormals():
        auto = None
        if args.precision == "auto":  # as the trainer does it, without the cache: measured afresh
            cpu = torch.device("cpu")
            auto = choose_precision("auto", cpu, None, lambda: {},
                                    lambda: time_steps(model, upcoming_batches(stream, cpu), cfg.train), None)
            print(f"precision: {auto.precision} ({auto.why})")
        precision = auto.precision if auto else args.precision
        autocast = AUTOCAST_DTYPES[precision]
        timing = time_training(model, stream, cfg, args.steps, args.warmup, autocast, args.compile)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast is not None):
            greedy_s = time_decoding(model, test_ids, cfg, 1)
            beam_s = time_decoding(model, test_ids, cfg, BEAM_SIZE)
        if args.profile:
            print(f"profile of {args.profile} training steps, top operators by self CPU time:")
            print(profile_training(model, stream, cfg, args.profile, autocast))
        if args.quantize == "int8":  # last: in place; fp32 activations (no bf16 autocast for int8 kernels)
            quantize_int8(model)
            greedy_int8_s = time_decoding(model, test_ids, cfg, 1)
            beam_int8_s = time_decoding(model, test_ids, cfg, BEAM_SIZE)
    if args.matmul:
        for dtype in (torch.float32, torch.bfloat16):
            rates = ", ".join(f"{shape} {rate:,.0f}" for shape, rate in matmul_gflops(dtype).items())
            print(f"torch.matmul {str(dtype).removeprefix('torch.')} GFLOP/s ({torch.get_num_threads()} threads): {rates}")

    flops = 2 * 3 * forward_macs_per_tgt_token(cfg, len(tgt_tok), timing)
    tgt_per_s = timing.tgt_tokens / timing.seconds
    results = {
        "config": str(args.config),
        "overrides": list(args.overrides),
        "steps": args.steps,
        "device": "cpu",
        "precision": precision,
        "auto": None if auto is None else {"picked": auto.precision, "seconds_per_step": auto.seconds_per_step,
                                           "why": auto.why},
        "compile": args.compile,
        "warmup_s": timing.warmup_s,
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "params": params,
        "train_tgt_tokens_per_s": tgt_per_s,
        "train_src_tokens_per_s": timing.src_tokens / timing.seconds,
        "ms_per_step": timing.ms_per_step,
        "flops_per_tgt_token": flops,
        "train_gflops_per_s": flops * tgt_per_s / 1e9,
        "greedy_sents_per_s": n_test / greedy_s,
        "beam5_sents_per_s": n_test / beam_s,
        "peak_rss_mib": peak_rss_mib(),
    }
    if args.quantize == "int8":
        results["greedy_int8_sents_per_s"] = n_test / greedy_int8_s
        results["beam5_int8_sents_per_s"] = n_test / beam_int8_s
    return results, n_test


def print_table(r: dict[str, Any], warmup: int, n_decoded: int) -> None:
    """The results, with the settings that produced them."""
    rows = [
        ("config", " ".join([r["config"], *(f"--set {o}" for o in r["overrides"])])),
        ("torch", r["torch_version"]),
        ("threads", r["threads"]),
        ("precision", r["precision"] + (" (auto's pick)" if r["auto"] else "") + (", torch.compile" if r["compile"] else "")),
        ("steps (warm-up)", f"{r['steps']} ({warmup}, {r['warmup_s']:.1f} s)"),
        ("parameters", f"{r['params']:,}"),
        ("train tgt tokens/s", f"{r['train_tgt_tokens_per_s']:,.0f}"),
        ("train src tokens/s", f"{r['train_src_tokens_per_s']:,.0f}"),
        ("ms/step", f"{r['ms_per_step']:.1f}"),
        ("FLOPs/tgt token (train, approx.)", f"{r['flops_per_tgt_token'] / 1e6:.1f} M"),
        ("train GFLOP/s (approx.)", f"{r['train_gflops_per_s']:.1f}"),
        (f"greedy sents/s ({n_decoded} sents)", f"{r['greedy_sents_per_s']:.1f}"),
        (f"beam 5 sents/s ({n_decoded} sents)", f"{r['beam5_sents_per_s']:.1f}"),
        ("peak RSS", f"{r['peak_rss_mib']:.0f} MiB"),
    ]
    if "greedy_int8_sents_per_s" in r:
        rows[-1:-1] = [(f"greedy int8 sents/s ({n_decoded} sents)", f"{r['greedy_int8_sents_per_s']:.1f}"),
                       (f"beam 5 int8 sents/s ({n_decoded} sents)", f"{r['beam5_int8_sents_per_s']:.1f}")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", help="a training config (YAML)")
    p.add_argument("--steps", type=int, default=50, help="timed training steps (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed training steps first (default 5)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--decode-sentences", type=int, help="decode the first K test sentences (default: all)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: train.threads, else torch's)")
    p.add_argument("--profile", type=int, default=0, metavar="N",
                   help="also profile N training steps and print the top operators by self CPU time")
    p.add_argument("--matmul", action="store_true",
                   help="also print what torch.matmul alone reaches here (fp32 and bf16 GFLOP/s)")
    p.add_argument("--precision", choices=["fp32", "bf16", "auto"], default="fp32",
                   help="fp32 (default) or bf16 autocast of the forward passes, to see if it pays off here; "
                        "auto: what train.precision: auto picks here, measured afresh")
    p.add_argument("--quantize", choices=["none", "int8"], default="none",
                   help="int8: also time decoding with dynamic int8 weights for Linear and GRU layers "
                        "(nmt translate --quantize int8), next to the float timings")
    p.add_argument("--compile", action="store_true",
                   help="train through torch.compile(model, dynamic=True); warm-up time includes compiling")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override a config key, as nmt train --set (e.g. model.input_feeding=true)")
    args = p.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.threads < 0 or args.profile < 0:
        p.error("--steps must be >= 1, --warmup, --threads and --profile >= 0")
    if args.decode_sentences is not None and args.decode_sentences < 1:
        p.error("--decode-sentences must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        results, n_decoded = run(args)
    except NmtError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print_table(results, args.warmup, n_decoded)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
