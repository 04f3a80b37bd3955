"""PyTorch (cuDNN/cuBLAS, fp32, TF32 off) on gpu-check's other workloads, for the ratio in the same call:
the convolution 64x32x28x28 * 64x32x3x3 (padding 1) and the MLP 784-512-256-10 training step (SGD with
momentum 0.9, cross-entropy) at batch 1024. Median of timed repetitions after a warm-up."""
import json
import torch

torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
dev = "cuda"


def median_seconds(f, reps, rounds=7):
    for _ in range(3):
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            f()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / reps)
    times.sort()
    return times[len(times) // 2]


g = torch.Generator(device=dev).manual_seed(1)
x = torch.randn(64, 32, 28, 28, device=dev, generator=g)
w = torch.randn(64, 32, 3, 3, device=dev, generator=g)
conv = median_seconds(lambda: torch.nn.functional.conv2d(x, w, padding=1), 50)

torch.manual_seed(1)
model = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(), torch.nn.Linear(512, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).to(dev)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
xb = torch.randn(1024, 784, device=dev, generator=g)
yb = torch.randint(0, 10, (1024,), device=dev, generator=g)


def step():
    opt.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(xb), yb)
    loss.backward()
    opt.step()


mlp = median_seconds(step, 20)
print(json.dumps({
    "device": torch.cuda.get_device_name(0), "torch": torch.__version__,
    "conv_ms": round(conv * 1e3, 4), "conv_gflops": round(2.0 * 64 * 64 * 28 * 28 * 32 * 9 / conv / 1e9, 1),
    "mlp_batch": 1024, "mlp_step_ms": round(mlp * 1e3, 4),
}, indent=2))
