#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with $OUT set by the device tool: the GPU backend's
# gpu-check on CUDA, then PyTorch's cuBLAS SGEMM (fp32, TF32 off) on the same sizes and its convolution and MLP step on
# gpu-check's workloads, in the same call.
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
tar xzf .gpu/app.tgz -C /tmp
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
nvidia-smi -L 2>&1 | tee "$OUT/devices.txt"
timeout 180 /tmp/app/MiniDeep.Benchmarks gpu-check --device cuda --json "$OUT/gpu-check.json" 2>&1 | tee "$OUT/gpu-check.log"
timeout 75 python3 .gpu/torch_matmul.py 2>&1 | tee "$OUT/torch.json"
timeout 75 python3 .gpu/torch_steps.py 2>&1 | tee "$OUT/torch-steps.json"
