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
            var deployed = new Sequential(Standardize.Fit(raw.Train.X), model).Eval();
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
            // Within 1e-5 of each logit's size (at least 1): float32 carries 7 significant digits, so at
            // the trained logits' size (tens) a sum of 784 products summed in another order differs by
            // a few units in the last place, more than 1e-5 absolute (measured 1.5e-5 at 33.8).
            double worst = 0, worstScaled = 0;
            int agree = 0, n = x.Size(0);
            for (int i = 0; i < n; i++)
            {
                var a = actual.AsSpan(i * 10, 10);
                var w = want.AsSpan(i * 10, 10);
                for (int k = 0; k < 10; k++)
                {
                    worst = Math.Max(worst, Math.Abs(a[k] - w[k]));
                    worstScaled = Math.Max(worstScaled, Math.Abs(a[k] - w[k]) / Math.Max(1, Math.Abs(w[k])));
                }
                if (a.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(a)) == w.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(w))) agree++;
            }
            output.WriteLine($"{n} test images: max |MiniDeep − ONNX Runtime| = {worst:E2} (logits up to {want.Max(MathF.Abs):G3}), " +
                             $"{worstScaled:E2} of max(1, |logit|); same class {agree}/{n}");
            Assert.True(worstScaled <= 1e-5, $"max difference {worst:E2}, {worstScaled:E2} relative");
            Assert.Equal(n, agree);
            Assert.Contains("wrote " + onnx, log.ToString());
        }
        finally { dir.Delete(recursive: true); }
    }
}
