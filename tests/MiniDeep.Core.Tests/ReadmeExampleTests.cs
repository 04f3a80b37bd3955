using Xunit;

namespace MiniDeep.Tests;

public class ReadmeExampleTests
{
    [Fact]
    public void TheReadmeSnippet_RunsAndLowersTheLoss()
    {
        // --- the README snippet, verbatim ---
        var g = new Generator(seed: 42);                                   // the one seeded source of randomness
        var x = Tensor.Randn(new Shape(64, 784), g);                       // a batch of inputs
        var y = Tensor.Randint(0, 10, new Shape(64), g);                   // class labels
        var w = (Tensor.Randn(new Shape(784, 10), g) * 0.01).RequiresGrad_();
        var b = Tensor.Zeros(10).RequiresGrad_();
        var loss = Losses.CrossEntropy(Tensor.MatMul(x, w) + b, y);        // forward: records the tape
        loss.Backward();                                                   // backward: fills w.Grad and b.Grad
        using (Autograd.NoGrad()) { w.AddInPlace(w.Grad!, -0.1); b.AddInPlace(b.Grad!, -0.1); }
        // --- end of snippet ---

        Assert.Equal(new Shape(784, 10), w.Grad!.Shape);
        var after = Losses.CrossEntropy(Tensor.MatMul(x, w) + b, y);
        Assert.True(after.Item() < loss.Item(), $"one SGD step should lower the loss: {loss.Item()} -> {after.Item()}");
    }

    [Fact]
    public void TheReadmeSnippet_IsTheOneInTheReadme()
    {
        var readme = File.ReadAllText(Path.Combine(RepoRoot.Path, "README.md"));
        var test = File.ReadAllText(Path.Combine(RepoRoot.Path, "tests", "MiniDeep.Core.Tests", "ReadmeExampleTests.cs"));
        int s = test.IndexOf("// --- the README snippet, verbatim ---", StringComparison.Ordinal);
        int e = test.IndexOf("// --- end of snippet ---", StringComparison.Ordinal);
        var lines = test[s..e].Split('\n').Skip(1).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("//"));
        foreach (var line in lines) Assert.Contains(line, readme);
    }
}

/// <summary>The repository root, found by walking up from the test assembly to MiniDeep.sln.</summary>
public static class RepoRoot
{
    public static string Path { get; } = Find();

    private static string Find()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "MiniDeep.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("MiniDeep.sln not found above " + AppContext.BaseDirectory);
    }
}
