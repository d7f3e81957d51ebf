#!/usr/bin/env bash
# One-command GPU check (issue 15, item 8): pegan on CUDA, unattended, a few minutes on one GPU.
#
#   benchmarks/gpu_check.sh            # from anywhere; uses .venv when the repo has one
#
# 1. a smoke slice of the DAG with `device: cuda` (preset `gpu-check` = smoke on CUDA, outputs
#    under results/gpu-check/ and figures/gpu-check/): trains MS-PIE config-f (t5f) and the
#    512-px baseline (t5b), evaluates t5f with every registered metric, draws a sample figure;
# 2. `pegan evaluate` of that model with the paper's FID protocol (legacy_pytorch) and the
#    clean column, on CUDA;
# 3. the CUDA rows of benchmarks/bench_train.py (sec/kimg of the 256-px C2 and MS-PIE
#    config-f at per-GPU batch 3) and benchmarks/bench_metrics.py on CUDA;
# 4. benchmarks/cuda_agreement.py: every family's G and D on CPU and CUDA from the same
#    weights and inputs (largest differences, TF32 convolutions off and on), and the
#    structure metric of one generator on both devices;
# then prints one summary (a line per step: status, seconds, log) and exits non-zero if a step
# failed. With no GPU visible it stops at once with one line and exit status 2.
# Environment: GPU_CHECK_OUT (log folder, default results/gpu-check/logs), GPU_CHECK_CORES
# (snakemake --cores, default 4), GPU_CHECK_STEP_TIMEOUT (seconds per step, default 900).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
# shellcheck disable=SC1091
[[ -f .venv/bin/activate && -z ${VIRTUAL_ENV:-} ]] && . .venv/bin/activate

PRESET=gpu-check
OUT=${GPU_CHECK_OUT:-results/$PRESET/logs}
CORES=${GPU_CHECK_CORES:-4}
STEP_TIMEOUT=${GPU_CHECK_STEP_TIMEOUT:-900}
mkdir -p "$OUT"

if ! gpu=$(python - <<'EOF' 2>"$OUT/gpu.err"
import torch
if not torch.cuda.is_available():
    raise SystemExit(1)
p = torch.cuda.get_device_properties(0)
print(f"{torch.cuda.device_count()} x {p.name} ({p.total_memory / 2**30:.0f} GiB), "
      f"torch {torch.__version__}, CUDA {torch.version.cuda}")
EOF
); then
    echo "gpu_check: error: no CUDA GPU visible to torch (torch.cuda.is_available() is False;" \
         "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}); run it on a machine with a GPU" >&2
    exit 2
fi
echo "gpu_check: $gpu"

# the gpu-check preset: the smoke preset with device cuda (a GPU is required, not preferred)
extra="$OUT/gpu-check-preset.yaml"
python - "$extra" <<'EOF' || { echo "gpu_check: error: cannot write $extra" >&2; exit 2; }
import sys
import yaml
raw = yaml.safe_load(open("config.yaml"))
preset = dict(raw["presets"]["smoke"], device="cuda",
              description="benchmarks/gpu_check.sh: the smoke preset on CUDA")
yaml.safe_dump({"presets": {"gpu-check": preset}}, open(sys.argv[1], "w"), sort_keys=False)
EOF
every_metric=$(python -c "from pegan.metrics import registry as r; print(r.metric_set(set(r.metrics())))")
run="results/$PRESET/runs/t5f/seed0"
targets=("$run/final.pt"
         "results/$PRESET/metrics/t5f/seed0/final-64px-$every_metric.json"
         "figures/$PRESET/samples-mspie-upsampling.png")

declare -a summary
status=0
step() {   # step NAME COMMAND... : run with a time limit, log to $OUT/NAME.log, record a line
    local name=$1 start rc
    shift
    start=$(date +%s)
    echo "gpu_check: [$name] $*"
    timeout "$STEP_TIMEOUT" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    local took=$(( $(date +%s) - start ))
    if [[ $rc == 0 ]]; then
        summary+=("$(printf '%-16s ok     %5ss  %s' "$name" "$took" "$OUT/$name.log")")
    else
        [[ $rc == 124 ]] && note="timed out after ${STEP_TIMEOUT}s" || note="exit $rc"
        summary+=("$(printf '%-16s FAILED %5ss  %s (%s; last line: %s)' "$name" "$took" \
            "$OUT/$name.log" "$note" "$(tail -n 1 "$OUT/$name.log")")")
        status=1
    fi
}

step dag snakemake --cores "$CORES" --configfile "$extra" --config preset=$PRESET \
    --forcerun train -- "${targets[@]}"
step legacy-fid pegan evaluate "$run/final.pt" --scale 64 --metrics fid-kid-fidclean \
    --real "results/$PRESET/data/synthetic-aligned-64px.zip" --samples '{"fid": 64}' \
    --metric-settings '{"fid_mode": "legacy_pytorch"}' --device cuda \
    --out "results/$PRESET/metrics/t5f/seed0/legacy-final-64px-fid-kid-fidclean.json"
step bench-train python benchmarks/bench_train.py --only cuda --iters 8 --warmup 2
step bench-metrics python benchmarks/bench_metrics.py --device cuda --pr-sizes 10000 \
    --swd-sizes 512 --swd-repeats 1
step cuda-agreement python benchmarks/cuda_agreement.py --preset mini \
    --real "results/$PRESET/data/synthetic-aligned-32px.zip"

echo
echo "gpu_check summary ($gpu)"
printf '%s\n' "${summary[@]}"
metrics="results/$PRESET/metrics/t5f/seed0/final-64px-$every_metric.json"
if [[ -f $metrics ]]; then
    echo "every metric, t5f at 64 px on CUDA: $(python -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['values'], sort_keys=True))" "$metrics")"
fi
legacy="results/$PRESET/metrics/t5f/seed0/legacy-final-64px-fid-kid-fidclean.json"
if [[ -f $legacy ]]; then
    echo "paper FID protocol (legacy_pytorch + clean column): $(python -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['values'], sort_keys=True))" "$legacy")"
fi
echo "bench_train (CUDA rows):"
sed -n '/^experiment/,$p' "$OUT/bench-train.log" 2>/dev/null
echo "bench_metrics: $OUT/bench-metrics.log"
grep -A4 -E "^throughput|^P&R" "$OUT/bench-metrics.log" 2>/dev/null
echo "cuda_agreement (CPU against CUDA, same weights and inputs):"
cat "$OUT/cuda-agreement.log" 2>/dev/null
[[ $status == 0 ]] && echo "gpu_check: OK" || echo "gpu_check: FAILED (see the logs above)" >&2
exit $status
