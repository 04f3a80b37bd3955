using System.Runtime.Intrinsics;
using MiniDeep.Cpu;
using MiniDeep.Nn;
using MiniDeep.Optim;

namespace MiniDeep.Benchmarks;

/// <summary>
/// The workloads of the benchmark suite, shared by the BenchmarkDotNet classes and the quick mode so
/// that both measure exactly the same thing. Shapes, optimizer and loss match the libtorch figures the
/// performance issue quotes.
/// </summary>
public static class Workloads
{
    /// <summary>FMA chains per thread in the peak benchmark: enough independent accumulators to cover
    /// the FMA latency (4 cycles) times the FMA ports (2) with room to spare.</summary>
    public const int PeakChains = 12;

    /// <summary>
    /// Runs <paramref name="iterations"/> rounds of 12 independent Vector512 FMAs on each of
    /// <paramref name="threads"/> threads and returns the floating-point operations done (2 per lane per FMA).
    /// Falls back to Vector256 where AVX-512 is off, so the "peak" is always the peak of the widest
    /// vectors the kernels may use.
    /// </summary>
    public static double PeakFma(int threads, long iterations)
    {
        var workers = new Thread[threads];
        var sink = new float[threads];
        for (int t = 0; t < threads; t++)
        {
            int id = t;
            workers[t] = new Thread(() => sink[id] = Vector512.IsHardwareAccelerated ? Chains512(iterations) : Chains256(iterations));
            workers[t].Start();
        }
        foreach (var w in workers) w.Join();
        int lanes = Vector512.IsHardwareAccelerated ? 16 : 8;
        return 2.0 * lanes * PeakChains * iterations * threads;
    }

    private static float Chains512(long n)
    {
        var m = Vector512.Create(0.999999f); var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = m, c1 = m, c2 = m, c3 = m, c4 = m, c5 = m, c6 = m, c7 = m, c8 = m, c9 = m, c10 = m, c11 = m;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    private static float Chains256(long n)
    {
        var m = Vector256.Create(0.999999f); var a = Vector256.Create(1e-7f);
        Vector256<float> c0 = m, c1 = m, c2 = m, c3 = m, c4 = m, c5 = m, c6 = m, c7 = m, c8 = m, c9 = m, c10 = m, c11 = m;
        for (long i = 0; i < n; i++)
        {
            c0 = Vector256.FusedMultiplyAdd(c0, m, a); c1 = Vector256.FusedMultiplyAdd(c1, m, a);
            c2 = Vector256.FusedMultiplyAdd(c2, m, a); c3 = Vector256.FusedMultiplyAdd(c3, m, a);
            c4 = Vector256.FusedMultiplyAdd(c4, m, a); c5 = Vector256.FusedMultiplyAdd(c5, m, a);
            c6 = Vector256.FusedMultiplyAdd(c6, m, a); c7 = Vector256.FusedMultiplyAdd(c7, m, a);
            c8 = Vector256.FusedMultiplyAdd(c8, m, a); c9 = Vector256.FusedMultiplyAdd(c9, m, a);
            c10 = Vector256.FusedMultiplyAdd(c10, m, a); c11 = Vector256.FusedMultiplyAdd(c11, m, a);
        }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    /// <summary>Square n×n operands for SGEMM, filled from a seeded generator.</summary>
    public sealed class GemmOperands
    {
        public readonly int N;
        public readonly float[] A, B, C;
        public GemmOperands(int n)
        {
            N = n;
            var g = new Generator(seed: (ulong)n);
            A = Tensor.Randn(new Shape(n, n), g).ToArray<float>();
            B = Tensor.Randn(new Shape(n, n), g).ToArray<float>();
            C = new float[n * n];
        }
        public double Flops => 2.0 * N * N * N;
        public unsafe void Run()
        {
            fixed (float* a = A) fixed (float* b = B) fixed (float* c = C)
                Gemm.Sgemm(N, N, N, a, N, 1, b, N, 1, c, N);
        }
    }

    /// <summary>MLP 784-512-256-10, as the libtorch figures describe it.</summary>
    public static Module Mlp(Generator g) => new Sequential(new Linear(784, 512, generator: g), Activations.ReLU(),
        new Linear(512, 256, generator: g), Activations.ReLU(), new Linear(256, 10, generator: g));

    /// <summary>conv32-ReLU-maxpool-conv64-ReLU-maxpool-fc128-ReLU-fc10 on 28×28 inputs.</summary>
    public static Module Cnn(Generator g) => new Sequential(
        new Conv2d(1, 32, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d((2, 2)),
        new Conv2d(32, 64, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d((2, 2)),
        new Flatten(), new Linear(64 * 7 * 7, 128, generator: g), Activations.ReLU(), new Linear(128, 10, generator: g));

    /// <summary>One training step (SGD, momentum 0.9, lr 0.01, cross-entropy) of a model on a fixed batch.</summary>
    public sealed class Step
    {
        private readonly Module _model;
        private readonly Optimizer _opt;
        private readonly Tensor _x, _y;
        public Step(Module model, Shape input, Generator g)
        {
            _model = model;
            _opt = new Sgd(_model.Parameters(), lr: 0.01, momentum: 0.9);
            _x = Tensor.Rand(input, g);
            _y = Tensor.Randint(0, 10, new Shape(input[0]), g);
        }
        public void Run()
        {
            _opt.ZeroGrad();
            var loss = Losses.CrossEntropy(_model.Forward(_x), _y);
            loss.Backward();
            _opt.Step();
        }
    }

    /// <summary>One training step of the MLP at <paramref name="batch"/>.</summary>
    public static Step MlpStep(int batch) { var g = new Generator(seed: 1); return new Step(Mlp(g), new Shape(batch, 784), g); }

    /// <summary>A Transformer encoder classifier: two post-norm layers of width 64 (4 heads, feed-forward
    /// 256, no dropout) over 32-token sequences of 64 features, then Flatten and Linear(32·64, 10).</summary>
    public static Module TransformerClassifier(Generator g) => new Sequential(
        new TransformerEncoder(() => new TransformerEncoderLayer(64, 4, dimFeedforward: 256, dropout: 0, batchFirst: true, generator: g), 2),
        new Flatten(), new Linear(32 * 64, 10, generator: g));

    /// <summary>One training step of the Transformer classifier at <paramref name="batch"/> sequences.</summary>
    public static Step TransformerStep(int batch) { var g = new Generator(seed: 3); return new Step(TransformerClassifier(g), new Shape(batch, 32, 64), g); }

    /// <summary>One training step of the CNN at <paramref name="batch"/>.</summary>
    public static Step CnnStep(int batch) { var g = new Generator(seed: 2); return new Step(Cnn(g), new Shape(batch, 1, 28, 28), g); }

    /// <summary>
    /// The same step with forward, loss and backward captured once (<see cref="StepCapture"/>) and
    /// replayed: the batch is copied into the captured input, the kernels run again, then the
    /// optimizer steps eagerly. Same arithmetic, same bits as <see cref="Step"/>.
    /// </summary>
    public sealed class CapturedStep
    {
        private readonly Optimizer _opt;
        private readonly Tensor _x, _y, _batchX, _batchY;
        private readonly MiniDeep.CapturedStep _step;
        public CapturedStep(Module model, Shape input, Generator g)
        {
            _opt = new Sgd(model.Parameters(), lr: 0.01, momentum: 0.9);
            _batchX = Tensor.Rand(input, g);
            _batchY = Tensor.Randint(0, 10, new Shape(input[0]), g);
            _x = Tensor.Zeros(input);
            _y = Tensor.Zeros(new Shape(input[0]), DType.Int32);
            _step = StepCapture.Capture(model.Parameters(), () =>
            {
                var loss = Losses.CrossEntropy(model.Forward(_x), _y);
                loss.Backward();
                return loss;
            });
        }
        /// <summary>The capture itself (for the per-kernel profile).</summary>
        public MiniDeep.CapturedStep Captured => _step;
        public void Run()
        {
            _x.CopyFrom(_batchX);   // what a training loop does with each new batch
            _y.CopyFrom(_batchY);
            _step.Replay();
            _opt.Step();
        }
    }

    /// <summary>The MLP step, captured.</summary>
    public static CapturedStep CapturedMlpStep(int batch) { var g = new Generator(seed: 1); return new CapturedStep(Mlp(g), new Shape(batch, 784), g); }

    /// <summary>The CNN step, captured.</summary>
    public static CapturedStep CapturedCnnStep(int batch) { var g = new Generator(seed: 2); return new CapturedStep(Cnn(g), new Shape(batch, 1, 28, 28), g); }

    /// <summary>The Transformer classifier's step, captured.</summary>
    public static CapturedStep CapturedTransformerStep(int batch) { var g = new Generator(seed: 3); return new CapturedStep(TransformerClassifier(g), new Shape(batch, 32, 64), g); }

    /// <summary>The per-op overhead probes: an add of two 64-float tensors, and (w*w).Sum().Backward() on 64 floats.</summary>
    public sealed class Tiny
    {
        private readonly Tensor _a, _b, _w;
        public Tiny()
        {
            var g = new Generator(seed: 3);
            _a = Tensor.Randn(new Shape(64), g);
            _b = Tensor.Randn(new Shape(64), g);
            _w = Tensor.Randn(new Shape(64), g).RequiresGrad_();
        }
        public Tensor Add() => _a + _b;
        public void MulSumBackward()
        {
            _w.Grad = null;
            (_w * _w).Sum().Backward();
        }
    }
}
