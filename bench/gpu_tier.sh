#!/usr/bin/env bash
# The gpu tier in one prepared run, for a machine with CUDA (nothing here runs in CI):
#   1. the tests marked `gpu`: the step without host synchronisation (fp32/bf16/fp16, clipping,
#      accumulation) under torch.cuda.set_sync_debug_mode("error"), pinned streamed batches,
#      channels_last, cuda:N, fp16's scaler, torch.compile on CUDA, and with two or more GPUs DDP
#      over nccl with SyncBatchNorm (tests/run/test_gpu_step.py, tests/run/test_ddp_gpu.py);
#   2. bench/bench_gpu.py: ResNet-50 bf16 samples/s, nnspec against a hand-written loop.
# Usage: bash bench/gpu_tier.sh [OUT_DIR]   (uses .venv; its torch must be a CUDA build)
# Each part's output goes to OUT_DIR (default: $OUT or /tmp/gpu-tier); the exit status is the
# tests' status, so a failing test is seen even when the benchmark ran.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/gpu-tier}}
mkdir -p "$out"
py=.venv/bin/python
{ nvidia-smi; $py -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.device_count())"; } \
    > "$out/machine.txt" 2>&1
cat "$out/machine.txt"
$py -m pytest -m gpu -p no:cacheprovider -q -rs tests/run/test_gpu_step.py tests/run/test_ddp_gpu.py \
    2>&1 | tee "$out/gpu-tests.txt"
status=${PIPESTATUS[0]}
$py bench/bench_gpu.py --reps 2 2>&1 | tee "$out/bench-gpu.txt"
exit "$status"
