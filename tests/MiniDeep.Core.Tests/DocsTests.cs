using System.Text.RegularExpressions;
using Xunit;

namespace MiniDeep.Tests;

public class DocsTests
{
    // A derivative comment: "// y = ...   d... = ..." (or ℓ for losses), three spaces between terms.
    private static readonly Regex DerivativeComment = new(@"^\s*// ((?:y|ℓ) = .*?\s{3}d.*)$", RegexOptions.Multiline);

    [Fact]
    public void EveryDerivativeComment_AppearsInDerivativesMd()
    {
        var doc = File.ReadAllText(Path.Combine(RepoRoot.Path, "docs", "derivatives.md")).Replace("\\|", "|");
        var ops = Directory.GetFiles(Path.Combine(RepoRoot.Path, "src", "MiniDeep.Core", "Ops"), "*.cs");
        var formulas = ops.SelectMany(f => DerivativeComment.Matches(File.ReadAllText(f)).Select(m => (File: Path.GetFileName(f), Text: m.Groups[1].Value.TrimEnd()))).ToList();
        Assert.True(formulas.Count >= 40, $"found only {formulas.Count} derivative comments");
        var missing = formulas.Where(x => !doc.Contains(x.Text, StringComparison.Ordinal)).ToList();
        Assert.True(missing.Count == 0, "not in docs/derivatives.md:\n" + string.Join("\n", missing.Select(m => $"{m.File}: {m.Text}")));
    }

    [Fact]
    public void EveryGradCheckedOp_IsNamedInDerivativesMd()
    {
        var doc = File.ReadAllText(Path.Combine(RepoRoot.Path, "docs", "derivatives.md")).ToLowerInvariant().Replace("_", "");
        var absent = OpSpecs.All.Select(s => s.Name)
            .Where(n => !n.Contains("scalar") && !n.Contains("_unsqueeze") && n != "unfold_fold")
            .Where(n => !doc.Contains(n.Replace("_", ""), StringComparison.Ordinal))
            .ToList();
        Assert.True(absent.Count == 0, "ops checked in the tests but not documented: " + string.Join(", ", absent));
    }
}
