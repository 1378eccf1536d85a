#!/usr/bin/env bash
# docs/guides/deploying.md (the README points to it), end to end, as a user runs it (CI runs it after the tests):
# export a run, install nmt-runtime alone into a fresh virtual environment (no torch), and there
# translate, evaluate and serve the export.
#
#   bash scripts/deploy_check.sh [RUN] [WORK]
#
# RUN: a trained run directory (default: a short training of configs/toy.yaml into WORK/run);
# WORK: a scratch folder (default: a new temporary one). Needs .venv (make venv) and data/toy (make toy).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${2:-$(mktemp -d)}
mkdir -p "$WORK"
RUN=${1:-$WORK/run}
if [ ! -d "$RUN" ]; then
  if ! .venv/bin/nmt train configs/toy.yaml --set run.dir="$RUN" --set train.max_steps=150 \
       --set train.validate_every=150 > "$WORK/train.log" 2>&1; then
    cat "$WORK/train.log" >&2; exit 1
  fi
fi

# 1. where nmt is installed: the export
.venv/bin/nmt export "$RUN" "$WORK/export" --overwrite

# 2. where it is deployed: a fresh environment with the runtime only
python3 -m venv "$WORK/venv"
if ! "$WORK/venv/bin/pip" install --quiet --disable-pip-version-check './runtime[serve]' > "$WORK/pip.log" 2>&1; then
  cat "$WORK/pip.log" >&2; exit 1
fi
if "$WORK/venv/bin/python" -c "import torch" 2>/dev/null; then
  echo "deploy_check: torch is importable in the runtime's environment" >&2; exit 1
fi
echo "environment: $(du -sm "$WORK/venv" | cut -f1) MiB, no torch"

echo "the king eats ." | "$WORK/venv/bin/nmt-runtime" translate "$WORK/export" --beam 5
"$WORK/venv/bin/nmt-runtime" evaluate "$WORK/export" --src data/toy/test.en --ref data/toy/test.fr --beam 5 \
  --out "$WORK/test.hyp"

# serve on a free port, translate one request, stop with SIGTERM (exit 0)
"$WORK/venv/bin/nmt-runtime" serve "$WORK/export" --port 0 > "$WORK/serve.log" 2>&1 &
SERVER=$!
for _ in $(seq 100); do grep -q "serving on" "$WORK/serve.log" && break; sleep 0.2; done
URL=$(grep -o "http://[^/]*/" "$WORK/serve.log")
"$WORK/venv/bin/python" - "$URL" <<'PY'
import json, sys, urllib.request
req = urllib.request.Request(sys.argv[1] + "v1/translate", data=json.dumps({"text": ["the king eats ."]}).encode(),
                             headers={"content-type": "application/json"})
print("served:", json.load(urllib.request.urlopen(req, timeout=30))["translations"][0]["text"])
PY
kill -TERM "$SERVER"
wait "$SERVER"
echo "deploy_check: ok ($WORK)"
