using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MiniDeep.IO;

namespace MiniDeep.Experiments.Lab;

/// <summary>
/// A claim's report as it is built: markdown sections, tables and plots for report.md, and named
/// metrics for metrics.json. Nothing is written until <see cref="Write"/>, which writes every file
/// atomically.
/// </summary>
public sealed class Report
{
    private readonly StringBuilder _body = new();
    private readonly List<(string Name, byte[] Png)> _images = [];
    private readonly TextWriter? _progress;
    private readonly string _prefix;
    private readonly System.Diagnostics.Stopwatch _sinceSection = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>A report that prints nothing while it is built.</summary>
    public Report() : this(null, "") { }

    /// <summary>A report that prints one progress line per section to <paramref name="progress"/>: the
    /// section's title and the seconds since the previous one (the claims compute a part, then write its
    /// section, so that is the part's time).</summary>
    public Report(TextWriter? progress, string prefix)
    {
        _progress = progress;
        _prefix = prefix;
    }

    /// <summary>Free-form measurements for metrics.json, by name.</summary>
    public JsonObject Metrics { get; } = [];

    /// <summary>Setup lines shown under "Setup".</summary>
    public List<string> Setup { get; } = [];

    /// <summary>Starts a section.</summary>
    public void Section(string title)
    {
        _body.Append("\n## ").Append(title).Append("\n\n");
        _progress?.WriteLine($"  [{_prefix}] {title}: {_sinceSection.Elapsed.TotalSeconds:F0} s");
        _sinceSection.Restart();
    }

    /// <summary>A paragraph.</summary>
    public void Text(string paragraph) => _body.Append(paragraph.Trim()).Append("\n\n");

    /// <summary>A markdown table.</summary>
    public void Table(string[] header, IEnumerable<string[]> rows)
    {
        _body.Append("| ").Append(string.Join(" | ", header)).Append(" |\n|");
        foreach (var _ in header) _body.Append("---|");
        _body.Append('\n');
        foreach (var r in rows) _body.Append("| ").Append(string.Join(" | ", r)).Append(" |\n");
        _body.Append('\n');
    }

    /// <summary>Adds a PNG (written beside report.md) and shows it.</summary>
    public void Image(string fileName, byte[] png, string caption)
    {
        _images.Add((fileName, png));
        _body.Append($"![{caption}]({fileName})\n\n*{caption}*\n\n");
    }

    /// <summary>Records a metric for metrics.json.</summary>
    public void Metric(string name, object? value) => Metrics[name] = JsonSerializer.SerializeToNode(value);

    /// <summary>Writes report.md, metrics.json and the PNGs into <paramref name="dir"/>.</summary>
    public void Write(string dir, IClaim claim, ClaimResult result, string machine)
    {
        foreach (var (name, png) in _images) AtomicFile.WriteAllBytes(Path.Combine(dir, name), png);
        var md = new StringBuilder();
        md.Append($"# {claim.Title}\n\n");
        md.Append($"> **Claim.** {claim.Statement}\n\n");
        md.Append($"**Verdict: {(result.Reproduced ? "reproduced" : "NOT reproduced")}** — {result.Checks.Count(c => c.Passed)} of {result.Checks.Count} pass lines hold. ");
        md.Append($"Data set {result.Dataset}, budget {result.Budget.ToString().ToLowerInvariant()}, seed {result.Seed}, {result.Seconds:F0} s on {machine}.\n\n");
        if (result.Budget == Budget.Smoke)
            md.Append("*Smoke budget: SynthDigits and small sizes, to test the machinery in seconds. Some pass lines are the smoke budget's own (the table shows the ones used); the claim itself is judged at the standard budget.*\n\n");
        md.Append("## Papers\n\n");
        foreach (var p in claim.Papers) md.Append($"- {p.Authors} ({p.Year}), *{p.Title}*: {p.Headline}\n");
        md.Append("\n## Pass lines\n\n| check | we measured | pass line | the paper says | holds? |\n|---|---|---|---|---|\n");
        foreach (var c in result.Checks)
            md.Append($"| {Cell(c.Description)} | {c.ValueText} | {c.ThresholdText} | {Cell(c.Paper)} | {(c.Passed ? "yes" : "**no**")} |\n");
        if (Setup.Count > 0)
        {
            md.Append("\n## Setup\n\n");
            foreach (var s in Setup) md.Append("- ").Append(s).Append('\n');
        }
        md.Append(_body);
        md.Append($"---\nRegenerate with `dotnet run -c Release --project src/MiniDeep.Experiments -- lab run {claim.Id} --budget {result.Budget.ToString().ToLowerInvariant()} --seed {result.Seed}`.\n");
        AtomicFile.WriteAllText(Path.Combine(dir, "report.md"), md.ToString());

        var json = ClaimJson(result);
        json["title"] = claim.Title;
        json["machine"] = machine;
        json["metrics"] = Metrics.DeepClone();
        AtomicFile.WriteAllText(Path.Combine(dir, "metrics.json"), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>A claim's verdict as JSON: the entry of `--json` and the head of metrics.json.</summary>
    public static JsonObject ClaimJson(ClaimResult r) => new()
    {
        ["id"] = r.Id,
        ["reproduced"] = r.Reproduced,
        ["seconds"] = Math.Round(r.Seconds, 2),
        ["dataset"] = r.Dataset,
        ["budget"] = r.Budget.ToString().ToLowerInvariant(),
        ["seed"] = r.Seed,
        ["checks"] = ChecksJson(r.Checks),
    };

    /// <summary>The checks as the JSON array of `--json` and metrics.json.</summary>
    public static JsonArray ChecksJson(IEnumerable<Check> checks) =>
        new(checks.Select(c => (JsonNode)new JsonObject
        {
            ["name"] = c.Name,
            ["description"] = c.Description,
            ["value"] = double.IsFinite(c.Value) ? c.Value : null,
            ["comparison"] = c.Symbol,
            ["threshold"] = c.Threshold,
            ["paper"] = c.Paper,
            ["passed"] = c.Passed,
            ["format"] = c.Format,
        }).ToArray());

    /// <summary>Text made safe for a markdown table cell (a bare | would end the cell).</summary>
    public static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);

    /// <summary>Formats a fraction as a percentage with one decimal.</summary>
    public static string Pct(double v) => double.IsNaN(v) ? "n/a" : Invariant(100 * v, "F1") + "%";

    /// <summary>Formats a value: "P1" as a percentage with one decimal and no space ("95.3%"), anything else as a .NET format string, invariant culture.</summary>
    public static string Format(double v, string format)
    {
        if (double.IsNaN(v)) return "n/a";
        if (format.StartsWith('P')) return Invariant(100 * v, "F" + (format.Length > 1 ? format[1..] : "0")) + "%";
        return Invariant(v, format);
    }

    /// <summary>Formats a number with the invariant culture.</summary>
    public static string Num(double v, string format = "G3") => Invariant(v, format);

    // .NET writes a small negative number that rounds to zero as "-0.0"; a reader takes that for a
    // measured loss or gain, so the sign goes when no digit of the number (before any exponent) is
    // other than zero.
    private static string Invariant(double v, string format)
    {
        var s = v.ToString(format, CultureInfo.InvariantCulture);
        if (!s.StartsWith('-')) return s;
        int e = s.IndexOfAny(['E', 'e']);
        var mantissa = e < 0 ? s : s[..e];
        return mantissa.Any(ch => ch is >= '1' and <= '9') ? s : s[1..];
    }
}
