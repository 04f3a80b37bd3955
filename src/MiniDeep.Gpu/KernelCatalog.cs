using System.Reflection;
using ILGPU;
using MiniDeep.Gpu.Kernels;

namespace MiniDeep.Gpu;

/// <summary>
/// Every kernel the backend can launch, each generic instantiation separately: the kernel methods of
/// <see cref="Kernels"/> crossed with the element types and the operator structs of Core. CI compiles
/// all of them to PTX for sm_90 (<see cref="CompileAll"/>), so CUDA code generation is checked on
/// every submission without a GPU.
/// </summary>
public static class KernelCatalog
{
    private static readonly (Type T, Type C)[] Elements =
        [(typeof(float), typeof(F32)), (typeof(double), typeof(F64)), (typeof(int), typeof(I32)), (typeof(byte), typeof(U8))];

    private static readonly Type[] KernelClasses =
        [typeof(Elementwise), typeof(Reductions), typeof(Indexing), typeof(Loss), typeof(Normalization), typeof(RandomFill), typeof(Gemm), typeof(Windows)];

    private static Type[] Ops(Type contract) =>
        [.. typeof(IUnaryOp).Assembly.GetTypes().Where(t => t.IsValueType && !t.IsGenericTypeDefinition && contract.IsAssignableFrom(t)).OrderBy(t => t.Name)];

    /// <summary>Every kernel instantiation, and whether it is explicitly grouped (uses shared memory and barriers).</summary>
    public static IEnumerable<(MethodInfo Kernel, bool Grouped)> All()
    {
        foreach (var type in KernelClasses)
            foreach (var m in type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.DeclaredOnly).OrderBy(m => m.Name))
            {
                if (m.ReturnType != typeof(void)) continue;
                var ps = m.GetParameters();
                bool grouped = ps.Length == 0 || ps[0].ParameterType != typeof(Index1D);
                foreach (var k in Instantiations(m)) yield return (k, grouped);
            }
    }

    private static IEnumerable<MethodInfo> Instantiations(MethodInfo m)
    {
        if (!m.IsGenericMethodDefinition) { yield return m; yield break; }
        var args = m.GetGenericArguments();
        var names = string.Join(",", args.Select(a => a.Name));
        switch (names)
        {
            case "TOp":
                var contract = args[0].GetGenericParameterConstraints().Single(c => c.IsInterface);
                foreach (var op in Ops(contract)) yield return m.MakeGenericMethod(op);
                break;
            case "T":
                foreach (var (t, _) in Elements) yield return m.MakeGenericMethod(t);
                break;
            case "T,C":
                foreach (var (t, c) in Elements) yield return m.MakeGenericMethod(t, c);
                break;
            case "T,TOp":
                foreach (var (t, _) in Elements)
                    foreach (var op in Ops(typeof(ICompareOp))) yield return m.MakeGenericMethod(t, op);
                break;
            case "TS,TD,CS,CD":
                foreach (var (ts, cs) in Elements)
                    foreach (var (td, cd) in Elements)
                        if (ts != td) yield return m.MakeGenericMethod(ts, td, cs, cd);
                break;
            default:
                throw new InvalidOperationException($"KernelCatalog: no rule for the generic parameters <{names}> of {m.DeclaringType?.Name}.{m.Name}");
        }
    }

    /// <summary>Compiles every kernel instantiation with <paramref name="compiler"/>; returns how many.</summary>
    public static int CompileAll(KernelCompiler compiler)
    {
        int n = 0;
        foreach (var (kernel, grouped) in All()) { compiler.Check(kernel, grouped); n++; }
        return n;
    }
}
