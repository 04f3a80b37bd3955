"""cuBLAS fp32 SGEMM through torch.matmul with TF32 off: the reference for gpu-check's sgemm_gflops."""
import json
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
result = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "sgemm_gflops": {}}
for n in [256, 512, 1024, 2048, 4096]:
    a = torch.randn(n, n, device="cuda", dtype=torch.float32)
    b = torch.randn(n, n, device="cuda", dtype=torch.float32)
    for _ in range(3):
        torch.matmul(a, b)
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    reps = max(3, int(2e11 / (2 * n ** 3)))
    times = []
    for _ in range(5):
        start.record()
        for _ in range(reps):
            torch.matmul(a, b)
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / reps)
    times.sort()
    result["sgemm_gflops"][str(n)] = round(2 * n ** 3 / times[len(times) // 2] / 1e9, 1)
print(json.dumps(result, indent=2))
