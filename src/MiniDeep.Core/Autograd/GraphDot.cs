using System.Globalization;
using System.Text;

namespace MiniDeep;

/// <summary>Draws the recorded graph behind a tensor as Graphviz DOT: leaves (parameters and inputs) as
/// ellipses, every recorded op as a box with its output shape, edges in the direction data flows.
/// Backward walks these edges in reverse.</summary>
public static class GraphDot
{
    /// <summary>The DOT text for the graph that produced <paramref name="root"/>. <paramref name="names"/> labels known tensors (parameters, inputs).</summary>
    public static string ToDot(Tensor root, IReadOnlyDictionary<Tensor, string>? names = null, string title = "graph")
    {
        var ids = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"digraph \"{title}\" {{");
        sb.AppendLine("  rankdir=TB; node [fontname=\"DejaVu Sans\", fontsize=11]; edge [color=\"#555555\"];");
        string Id(Tensor t)
        {
            if (ids.TryGetValue(t, out var id)) return id;
            id = "t" + ids.Count.ToString(CultureInfo.InvariantCulture);
            ids[t] = id;
            string name = names is not null && names.TryGetValue(t, out var n) ? n : t.Name ?? "";
            if (t.GradFn is { } node)
                sb.AppendLine(CultureInfo.InvariantCulture, $"  {id} [shape=box, style=\"rounded,filled\", fillcolor=\"#dbe8f7\", label=\"{node.Op}\\n{t.Shape}\"];");
            else
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"  {id} [shape=ellipse, style=filled, fillcolor=\"{(t.RequiresGrad ? "#fde2c8" : "#eeeeee")}\", label=\"{(name.Length > 0 ? name : t.RequiresGrad ? "" : "input")}{(name.Length > 0 || !t.RequiresGrad ? "\\n" : "")}{t.Shape}\"];");
            return id;
        }
        // Iterative walk (graphs may be deep), each tensor once.
        var stack = new Stack<Tensor>();
        stack.Push(root);
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance) { root };
        while (stack.Count > 0)
        {
            var t = stack.Pop();
            var id = Id(t);
            if (t.GradFn is not { } node) continue;
            foreach (var input in node.Inputs)
            {
                // Constants that are not tensors of data (scalars such as a mean's 1/n) would only clutter the picture.
                if (!input.RequiresGrad && input.Rank == 0) continue;
                sb.AppendLine(CultureInfo.InvariantCulture, $"  {Id(input)} -> {id};");
                if (seen.Add(input)) stack.Push(input);
            }
        }
        sb.AppendLine("}");
        return sb.ToString();
    }
}
