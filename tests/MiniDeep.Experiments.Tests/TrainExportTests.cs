using MiniDeep.Data;
using MiniDeep.Experiments;
using MiniDeep.IO;
using MiniDeep.Nn;
using Microsoft.ML.OnnxRuntime;
using Xunit;

namespace MiniDeep.Tests.Lab;

/// <summary>`train --save --onnx`: the files it writes hold the model it trained.</summary>
public class TrainExportTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(0, null, 1e-3, "--epochs must be at least 1, got 0")]
    [InlineData(null, -4, 1e-3, "--batch-size must be at least 1, got -4")]
    [InlineData(null, null, 0.0, "--lr must be positive")]
    [InlineData(null, null, double.NaN, "--lr must be positive")]
    [InlineData(1, 70_000, 1e-3, "--batch-size 70000 is larger than the 60,000 training images")]
    public void Train_RefusesOptionsNoTrainingCanRunWith_NamingTheOption(int? epochs, int? batch, double lr, string message)
    {
        var e = Assert.Throws<TrainOptionsException>(() => Train.Run(new TrainOptions("mlp", null, epochs, 0, null, batch, lr, "synthdigits"), TextWriter.Null));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Train_RefusesASavePathThatIsADirectory_BeforeTraining()
    {
        var e = Assert.Throws<TrainOptionsException>(() => Train.Run(new TrainOptions("mlp", null, 1, 0, null, null, 1e-3, "synthdigits", "cpu", SavePath: Path.GetTempPath()), TextWriter.Null));
        Assert.Contains("--save:", e.Message);
        Assert.Contains("is a directory, not a file", e.Message);
    }

    [Fact]
    public void TrainedModel_SavedAsSafetensors_AndExportedToOnnx_PredictTheSame()
    {
        var dir = Directory.CreateTempSubdirectory("minideep-train-");
        try
        {
            string save = Path.Combine(dir.FullName, "mlp.safetensors"), onnx = Path.Combine(dir.FullName, "mlp.onnx");
            var log = new StringWriter();
            Assert.Equal(0, Train.Run(new TrainOptions("mlp", null, 1, 0, null, null, 1e-3, "synthdigits", "cpu", save, onnx), log));

            // MiniDeep: the saved weights behind the training set's standardization, on raw test images;
            // ONNX Runtime: the exported graph on the same images.
            var raw = SynthDigits.Load(0);
            var model = Train.Build("mlp", new Generator(99));
            SafeTensors.Load(save, model);
            var standardize = Standardize.Fit(raw.Train.X);
            var deployed = new Sequential(standardize, model).Eval();
            Tensor expected;
            using (Autograd.NoGrad()) expected = deployed.Forward(raw.Test.X);

            using var session = new InferenceSession(onnx);
            var x = raw.Test.X;
            using var input = OrtValue.CreateTensorValueFromMemory(x.ToArray<float>(), [.. x.Shape.ToArray().Select(d => (long)d)]);
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, ["input"], [input], ["output"]);
            var actual = results[0].GetTensorDataAsSpan<float>().ToArray();
            var want = expected.ToArray<float>();
            Assert.Equal(want.Length, actual.Length);
            // A logit is a sum of 128 products plus a bias. Summed in another order in float32, it can
            // differ by a few units in the last place of the sum of the products' magnitudes,
            // Σ|W||h| + |b|, not of the result: a logit near 0 cancels terms of size ten and keeps their
            // absolute rounding error (measured 1.4e-5 at a logit of 1.4 with AVX2 kernels, 1.0e-5 of it).
            // So each difference is measured against that sum, computed from MiniDeep's last hidden layer.
            // 1e-5 of it sits below the worst case of two orders of 128 terms (2 · 128 · 2⁻²⁴ ≈ 1.5e-5) and
            // far above the typical one (measured 5.0e-7).
            var layers = ((Sequential)model).Layers;
            var head = (Linear)layers[^1];
            var trunk = new Sequential([standardize, .. layers.Take(layers.Count - 1)]).Eval();
            float[] magnitude;
            using (Autograd.NoGrad())
                magnitude = (Tensor.MatMul(trunk.Forward(x).Abs(), head.Weight.Abs().T) + head.Bias!.Abs()).ToArray<float>();
            double worst = 0, worstScaled = 0;
            int agree = 0, n = x.Size(0);
            for (int i = 0; i < n; i++)
            {
                var a = actual.AsSpan(i * 10, 10);
                var w = want.AsSpan(i * 10, 10);
                for (int k = 0; k < 10; k++)
                {
                    worst = Math.Max(worst, Math.Abs(a[k] - w[k]));
                    worstScaled = Math.Max(worstScaled, Math.Abs(a[k] - w[k]) / Math.Max(magnitude[i * 10 + k], 1e-30));
                }
                if (a.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(a)) == w.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(w))) agree++;
            }
            output.WriteLine($"{n} test images: max |MiniDeep − ONNX Runtime| = {worst:E2} (logits up to {want.Max(MathF.Abs):G3}), " +
                             $"{worstScaled:E2} of Σ|W||h| + |b|; same class {agree}/{n}");
            Assert.True(worstScaled <= 1e-5, $"max difference {worst:E2}, {worstScaled:E2} of Σ|W||h| + |b|");
            Assert.Equal(n, agree);
            Assert.Contains("wrote " + onnx, log.ToString());
        }
        finally { dir.Delete(recursive: true); }
    }
}
