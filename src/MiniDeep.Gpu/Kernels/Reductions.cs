using ILGPU;
using ILGPU.Runtime;

namespace MiniDeep.Gpu.Kernels;

/// <summary>
/// Reductions in a fixed order, so that the same input gives the same bits on every run and any GPU:
/// no atomics, no order that depends on scheduling. Element (o, r) of the input is at
/// kept.At(o) + reduced.At(r): o numbers the outputs, r the elements folded into one.
/// </summary>
public static class Reductions
{
    /// <summary>One step of a sum, max or min accumulated in double (NaN wins max and min).</summary>
    private static double Fold(int kind, double acc, double v) =>
        kind == 0 ? acc + v
        : (double.IsNaN(acc) || double.IsNaN(v)) ? double.NaN
        : kind == 1 ? (v > acc ? v : acc) : (v < acc ? v : acc);

    private static double Start(int kind) => kind == 0 ? 0.0 : kind == 1 ? double.NegativeInfinity : double.PositiveInfinity;

    /// <summary>One thread per output, walking its reduced elements in row-major order: for many short reductions.</summary>
    public static void PerThread<T, C>(Index1D o, ArrayView<T> x, Strided kept, Strided reduced, int count, int kind, ArrayView<T> y)
        where T : unmanaged where C : struct, IElem<T>
    {
        int baseAt = kept.At(o);
        double acc = Start(kind);
        for (int r = 0; r < count; r++) acc = Fold(kind, acc, C.Get(x[baseAt + reduced.At(r)]));
        y[o] = C.Put(acc);
    }

    /// <summary>Threads in one group per reduction.</summary>
    public const int GroupSize = 256;

    /// <summary>
    /// One group of <see cref="GroupSize"/> threads per output, for long reductions: thread t folds
    /// elements t, t + 256, ... in order, then the partials meet in a fixed binary tree in shared memory.
    /// </summary>
    public static void PerGroup<T, C>(ArrayView<T> x, Strided kept, Strided reduced, int count, int kind, ArrayView<T> y)
        where T : unmanaged where C : struct, IElem<T>
    {
        var partial = SharedMemory.Allocate<double>(GroupSize);
        int o = Grid.IdxX, t = Group.IdxX;
        int baseAt = kept.At(o);
        double acc = Start(kind);
        for (int r = t; r < count; r += GroupSize) acc = Fold(kind, acc, C.Get(x[baseAt + reduced.At(r)]));
        partial[t] = acc;
        Group.Barrier();
        for (int half = GroupSize / 2; half > 0; half /= 2)
        {
            if (t < half) partial[t] = Fold(kind, partial[t], partial[t + half]);
            Group.Barrier();
        }
        if (t == 0) y[o] = C.Put(partial[0]);
    }

    /// <summary>Index of the largest (or smallest) element along an axis, first on ties, a NaN wins.</summary>
    public static void ArgReduce<T, C>(Index1D o, ArrayView<T> x, Strided kept, int size, int stride, int max, ArrayView<int> y)
        where T : unmanaged where C : struct, IElem<T>
    {
        int start = kept.At(o), best = 0;
        double bv = C.Get(x[start]);
        for (int k = 1; k < size && !double.IsNaN(bv); k++)
        {
            double v = C.Get(x[start + k * stride]);
            if (double.IsNaN(v) || (max != 0 ? v > bv : v < bv)) { bv = v; best = k; }
        }
        y[o] = best;
    }
}
