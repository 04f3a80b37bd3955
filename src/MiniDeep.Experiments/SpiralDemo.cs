using System.Diagnostics;
using System.Text.Json;
using MiniDeep.IO;

namespace MiniDeep.Experiments;

/// <summary>
/// The training demo: a two-hidden-layer MLP learns to separate three interleaved spirals (the
/// classic toy problem no linear model can solve), written with nothing but tensors, autograd and a
/// hand-written SGD-with-momentum step, so every line of a training loop is visible.
/// </summary>
public static class SpiralDemo
{
    public sealed record Result(double FinalLoss, double TrainAccuracy, double TestAccuracy, double Seconds, int Steps, ulong Seed);

    /// <summary>n points per class on k spiral arms with angular noise; labels are the arm index.</summary>
    public static (Tensor X, Tensor Y) Spirals(int perClass, int classes, Generator g)
    {
        int n = perClass * classes;
        var r = Tensor.Linspace(0, 1, perClass).Repeat(classes);                       // radius 0 → 1 along each arm
        var label = Tensor.Arange(classes).Unsqueeze(1).Expand(classes, perClass).Reshape(n);
        var theta = label * (2 * Math.PI / classes) + r * 4 + Tensor.Randn(new Shape(n), g) * 0.2;
        var x = Tensor.Stack([r * theta.Sin(), r * theta.Cos()], 1);
        return (x, label.To(DType.Int32));
    }

    public static Result Run(ulong seed, int steps, TextWriter log)
    {
        var g = new Generator(seed);
        var (x, y) = Spirals(200, 3, g);
        var (xTest, yTest) = Spirals(100, 3, g);

        // Parameters: He initialization for the ReLU layers.
        Tensor Param(int fanIn, int fanOut) => (Tensor.Randn(new Shape(fanIn, fanOut), g) * Math.Sqrt(2.0 / fanIn)).RequiresGrad_();
        var w1 = Param(2, 64); var b1 = Tensor.Zeros(64).RequiresGrad_();
        var w2 = Param(64, 64); var b2 = Tensor.Zeros(64).RequiresGrad_();
        var w3 = Param(64, 3); var b3 = Tensor.Zeros(3).RequiresGrad_();
        Tensor[] parameters = [w1, b1, w2, b2, w3, b3];
        var velocity = parameters.Select(Tensor.ZerosLike).ToArray();
        Tensor Forward(Tensor input) =>
            Tensor.MatMul((Tensor.MatMul((Tensor.MatMul(input, w1) + b1).Relu(), w2) + b2).Relu(), w3) + b3;
        double Accuracy(Tensor input, Tensor labels)
        {
            using var _ = Autograd.NoGrad();
            return (Forward(input).ArgMax(1) == labels).Float().Mean().Item();
        }

        var clock = Stopwatch.StartNew();
        double loss = double.NaN;
        const double lr = 0.1, momentum = 0.9;
        for (int step = 1; step <= steps; step++)
        {
            var l = Losses.CrossEntropy(Forward(x), y);   // forward: records the tape
            foreach (var p in parameters) p.Grad = null;
            l.Backward();                                   // backward: fills p.Grad
            using (Autograd.NoGrad())                       // the update itself is not differentiated
            {
                for (int i = 0; i < parameters.Length; i++)
                {
                    velocity[i].MulInPlace(momentum).AddInPlace(parameters[i].Grad!);
                    parameters[i].AddInPlace(velocity[i], -lr);
                }
            }
            loss = l.Item();
            if (step == 1 || step % (steps / 10) == 0)
                log.WriteLine($"step {step,5}  loss {loss:F4}  train accuracy {Accuracy(x, y):P1}");
        }
        var result = new Result(loss, Accuracy(x, y), Accuracy(xTest, yTest), clock.Elapsed.TotalSeconds, steps, seed);
        log.WriteLine($"test accuracy {result.TestAccuracy:P1} on {xTest.Size(0)} held-out points, {result.Seconds:F2} s");
        return result;
    }

    public static void WriteJson(Result r, string path)
    {
        var json = JsonSerializer.Serialize(new
        {
            dataset = "spirals",
            final_loss = r.FinalLoss,
            train_accuracy = r.TrainAccuracy,
            test_accuracy = r.TestAccuracy,
            seconds = r.Seconds,
            steps = r.Steps,
            seed = r.Seed,
        }, new JsonSerializerOptions { WriteIndented = true });
        AtomicFile.WriteAllText(path, json);
    }
}
