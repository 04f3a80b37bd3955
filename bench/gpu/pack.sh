#!/usr/bin/env bash
# Prepares the device check for a GPU machine (see ../../../shared/GPU.md and docs/gpu.md): a
# self-contained build of the benchmarks (the machine has no .NET) packed into .gpu/app.tgz, and the
# scripts beside it. Then one call of the device tool: run `bash .gpu/device-check.sh` with carry [".gpu"].
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu
dotnet publish bench/MiniDeep.Benchmarks -c Release -r linux-x64 --self-contained \
    -p:InvariantGlobalization=true -o .gpu/app
tar czf .gpu/app.tgz -C .gpu app && rm -rf .gpu/app
cp bench/gpu/device-check.sh bench/gpu/torch_matmul.py bench/gpu/torch_steps.py .gpu/
ls -la .gpu
