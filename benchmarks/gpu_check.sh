#!/usr/bin/env bash
# The GPU path's first-night check: one script, one folder of results, at most ~8 minutes of wall time.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]          (default: gpu-check-YYYYmmdd-HHMMSS)
#
# On a machine with an NVIDIA GPU and a CUDA build of PyTorch (never replaced: the script refuses a CPU build),
# it installs vj's other Python dependencies if they are missing (from PyPI, or offline from $VJ_WHEELS, a
# folder of wheels/sdists; Debian libraries from $VJ_DEBS, a folder of .deb files, or apt when it works), then:
#   1. the cuda-marked tests (pytest -m cuda) of the runner, the mixed precision and the model;
#   2. vj bench --device cuda at batch 1 and 4 for 128/256/512 px (full-size random weights, published format);
#   3. 30 s of headless `vj live --device cuda --stats` on the demo with BigGAN-deep-128 random weights;
#   (and before it, start to first frame: load + make_runner + capture + self-check + one frame, startup.json);
# and writes OUT_DIR/table.md (one markdown table: paste it into docs/benchmarks.md), OUT_DIR/bench.jsonl,
# OUT_DIR/live-stats.jsonl, OUT_DIR/live.log, OUT_DIR/pytest.txt and OUT_DIR/env.txt.
# Each step has its own time limit so the whole stays under 8 minutes; a failed step is reported, not fatal.
set -u
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-${TMPDIR:-/tmp}/vj-gpu-check-cache}  # weights: ~1 GB, not in OUT
START=$(date +%s)
say() { echo "gpu_check [$(( $(date +%s) - START )) s]: $*" | tee -a "$OUT/env.txt" >&2; }

# --- 0. the card and torch -------------------------------------------------------------------------------------
{ nvidia-smi -L 2>&1; nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1; } \
  >> "$OUT/env.txt"
if ! "$PY" - >> "$OUT/env.txt" 2>&1 <<'PYEOF'
import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda)
if not torch.cuda.is_available():
    sys.exit("torch.cuda.is_available() is False: install a CUDA build of PyTorch first (this script never does)")
print("device", torch.cuda.get_device_name(0), "capability", torch.cuda.get_device_capability(0),
      "cudnn", torch.backends.cudnn.version())
PYEOF
then say "no usable CUDA device (see $OUT/env.txt)"; exit 2; fi

# --- 1. install what is missing (never torch) --------------------------------------------------------------------
if [ -n "${VJ_DEBS:-}" ]; then
  for f in "$VJ_DEBS"/*.deb; do dpkg -x "$f" / ; done; ldconfig
elif ! ldconfig -p | grep -q 'libEGL.so.1' && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  timeout 25 apt-get -qq update >/dev/null 2>&1 && \
    timeout 35 apt-get -qq install -y libegl1 libgl1 libgl1-mesa-dri libportaudio2 >/dev/null 2>&1 || \
    say "apt-get could not install the EGL/PortAudio libraries (headless GL may be missing)"
fi
missing=$("$PY" - <<'PYEOF'
import importlib.util
need = {"numpy": "numpy", "soundfile": "soundfile", "av": "av", "aubio": "aubio", "huggingface_hub": "huggingface_hub",
        "safetensors": "safetensors", "rich": "rich", "sounddevice": "sounddevice", "pyglet": "pyglet",
        "moderngl": "moderngl", "pythonosc": "python-osc", "mido": "mido", "tomli_w": "tomli-w", "pytest": "pytest",
        "hypothesis": "hypothesis", "pytorch_pretrained_biggan": "pytorch-pretrained-biggan"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
PYEOF
)
if [ -n "$missing" ]; then
  say "installing: $missing"
  if [ -n "${VJ_WHEELS:-}" ]; then
    timeout 45 "$PY" -m pip install -q --no-index --find-links "$VJ_WHEELS" $missing >> "$OUT/env.txt" 2>&1
  else
    timeout 45 "$PY" -m pip install -q $missing >> "$OUT/env.txt" 2>&1
  fi || say "pip could not install everything ($missing); steps that need it will say so"
fi

# --- 2. cuda-marked tests ----------------------------------------------------------------------------------------
say "cuda tests"
timeout 90 "$PY" -m pytest -m cuda -q -p no:cacheprovider tests/test_gpu_runner.py tests/test_fast.py \
  tests/test_biggan.py > "$OUT/pytest.txt" 2>&1
say "cuda tests: exit $? — $(tail -n 1 "$OUT/pytest.txt")"

# --- 3. vj bench -------------------------------------------------------------------------------------------------
say "bench"
timeout 170 "$PY" -m vj bench --device cuda --batch 1 --batch 4 --resolution 128 --resolution 256 \
  --resolution 512 --iters 50 --warmup 10 > "$OUT/bench.jsonl" 2> "$OUT/bench.err"
say "bench: exit $? ($(wc -l < "$OUT/bench.jsonl") rows)"

# --- 4. start to first frame, then 30 s of headless vj live on BigGAN-deep-128 -----------------------------------
say "start to first frame"
W=$("$PY" -c "from vj.commands.bench import cached_random_weights as w; print(w(128))" 2>> "$OUT/live.log")
timeout 45 "$PY" - "$W" > "$OUT/startup.json" 2>> "$OUT/live.log" <<'PYEOF'
import json, sys, time
import numpy as np
t0 = time.perf_counter()
from vj.models import load_generator
from vj.engine.gpu import make_runner
gen = load_generator("biggan-deep-128", weights=sys.argv[1], device="cpu", download=False)
t1 = time.perf_counter()
runner = make_runner(gen, 1, "cuda")
z = np.zeros((1, 128), np.float32); c = np.zeros((1, 1000), np.float32); c[0, 1] = 1.0
runner.run(z, c, 0.5)
t2 = time.perf_counter()
print(json.dumps({"load_s": round(t1 - t0, 3), "runner_to_first_frame_s": round(t2 - t1, 3),
                  "start_to_first_frame_s": round(t2 - t0, 3), "runner": runner.describe(),
                  "steps": getattr(runner, "steps", [])}))
PYEOF
say "live"
timeout 60 "$PY" -m vj live --headless --device cuda --model biggan-deep-128 --weights "$W" --input demo \
  --duration 30 --stats "$OUT/live-stats.jsonl" > "$OUT/live.log" 2>&1
say "live: exit $?"

# --- 5. the table ------------------------------------------------------------------------------------------------
"$PY" benchmarks/gpu_table.py "$OUT" > "$OUT/table.md" 2>> "$OUT/env.txt"
say "done in $(( $(date +%s) - START )) s: $OUT/table.md"
cat "$OUT/table.md"
