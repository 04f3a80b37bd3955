using System.Diagnostics;
using MiniDeep.Data;
using MiniDeep.IO;

namespace MiniDeep.Experiments;

/// <summary>`graph`: writes the autograd graph of one training step of the MLP as Graphviz DOT (and a PNG when Graphviz's `dot` is installed).</summary>
public static class GraphCommand
{
    public static int Run(string outPath, TextWriter log)
    {
        var g = new Generator(0);
        var model = Train.Build("mlp", g);
        var batch = SynthDigits.Generate(0, 0, 4);
        var x = batch.X;
        var loss = Losses.CrossEntropy(model.Forward(x), batch.Y);
        var names = model.NamedParameters().ToDictionary(p => p.Tensor, p => p.Name, (IEqualityComparer<Tensor>)ReferenceEqualityComparer.Instance);
        names[x] = "x (images)";
        var dot = GraphDot.ToDot(loss, names, "one training step of MLP 784-256-128-10");
        AtomicFile.WriteAllText(outPath, dot);
        log.WriteLine($"wrote {outPath}");
        if (Path.GetExtension(outPath) == ".dot")
        {
            var png = Path.ChangeExtension(outPath, ".png");
            try
            {
                using var p = Process.Start(new ProcessStartInfo("dot", ["-Tpng", "-Gdpi=110", outPath, "-o", png]) { RedirectStandardError = true })!;
                p.WaitForExit();
                log.WriteLine(p.ExitCode == 0 ? $"wrote {png}" : $"dot failed: {p.StandardError.ReadToEnd()}");
            }
            catch (System.ComponentModel.Win32Exception)
            {
                log.WriteLine("Graphviz's dot is not installed (apt-get install graphviz); only the DOT file was written");
            }
        }
        return 0;
    }
}
