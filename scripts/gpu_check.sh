#!/usr/bin/env bash
# GPU check: train the Multi30k de→en config for a few hundred steps on CUDA in fp32, bf16 and
# fp16 (with its gradient scaler), at the config's CPU-sized batch and at a GPU-sized one, and
# print training target tokens/s and peak GPU memory for each; then train the toy config on the GPU
# and keep its run, so you can check that a GPU checkpoint evaluates and translates on a CPU.
#
# Usage:  bash scripts/gpu_check.sh [OUT_DIR]      (from the repository root; default /tmp/gpu_check)
# Env:    PYTHON [python3]  STEPS [300]  CONFIG [configs/multi30k_de_en.yaml]
# Needs:  a CUDA GPU, torch with CUDA, nmt's other dependencies (numpy, sentencepiece, sacrebleu, pyyaml,
#         tqdm, array-api-compat), the Multi30k data (python scripts/get_data.py multi30k).
# Takes:  about 3–5 minutes on one H100, most of it sentencepiece training and start-up.
# Prints: one line per run — precision, batch, steps, median tokens/s (log lines after the first),
#         peak GPU memory — then the toy run's dev BLEU.
set -euo pipefail
OUT=${1:-/tmp/gpu_check}
PY=${PYTHON:-python3}
STEPS=${STEPS:-300}
CONFIG=${CONFIG:-configs/multi30k_de_en.yaml}
export PYTHONPATH="$PWD:$PWD/runtime${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"

"$PY" - <<'EOF'
import torch
assert torch.cuda.is_available(), "torch sees no CUDA GPU"
p = torch.cuda.get_device_properties(0)
print(f"torch {torch.__version__}, {p.name}, {p.total_memory / 2**30:.0f} GiB")
EOF

train() {  # NAME, then --set overrides
  local name=$1; shift
  local args=()
  for kv in "$@"; do args+=(--set "$kv"); done
  "$PY" -m nmt train "$CONFIG" --overwrite --set "run.dir=$OUT/$name" --set train.device=cuda \
    --set "train.max_steps=$STEPS" --set "train.validate_every=$STEPS" --set train.log_every=25 \
    --set train.max_minutes=0 --set train.progress=false --set train.keep_checkpoints=0 "${args[@]}" \
    > "$OUT/$name.log" 2>&1 || { tail -20 "$OUT/$name.log"; exit 1; }
  "$PY" - "$OUT/$name" "$name" <<'EOF'
import json, statistics, sys
events = [json.loads(line) for line in open(f"{sys.argv[1]}/metrics.jsonl")]
speeds = [e["tgt_tokens_per_s"] for e in events if e["event"] == "train"][1:]  # the first has warm-up
val = [e for e in events if e["event"] == "validation"][-1]
end = [e for e in events if e["event"] == "end"][-1]
print(f"{sys.argv[2]:<16} steps {end['step']:>4}  median {statistics.median(speeds):>9,.0f} tgt tok/s  "
      f"peak GPU memory {end['peak_gpu_mib']:>6,} MiB  dev BLEU {val['dev_bleu']:.1f} (greedy)")
EOF
}

for precision in fp32 bf16 fp16; do
  train "${precision}_b1600" "train.precision=$precision"
  train "${precision}_b12800" "train.precision=$precision" train.batch_tokens=12800 train.batch_size=512
done

CONFIG=configs/toy.yaml STEPS=600 train toy_gpu train.precision=bf16
echo "toy run kept in $OUT/toy_gpu: copy it to a CPU machine and run nmt evaluate / nmt translate on it"
