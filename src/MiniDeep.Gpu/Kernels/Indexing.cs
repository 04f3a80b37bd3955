using ILGPU;

namespace MiniDeep.Gpu.Kernels;

/// <summary>
/// Gather and its adjoint. An index outside the tensor cannot throw on a device, so the kernel records
/// it in <c>err</c> (flag, the bad value, the element) and the host raises the error after the launch.
/// </summary>
public static class Indexing
{
    /// <summary>y[i] = x[element i with its axis coordinate replaced by index[i]].</summary>
    /// <remarks><paramref name="xAt"/> is x's layout over the index's shape with the axis stride zeroed;
    /// the target adds target · <paramref name="axisStride"/>.</remarks>
    public static void Gather<T>(Index1D i, ArrayView<T> x, Strided xAt, int axisStride, int axisSize,
        ArrayView<int> index, Strided indexAt, ArrayView<T> y, ArrayView<int> err) where T : unmanaged
    {
        int target = index[indexAt.At(i)];
        if (target < 0 || target >= axisSize)
        {
            err[0] = 1; err[1] = target; err[2] = i;
            y[i] = default;
            return;
        }
        y[i] = x[xAt.At(i) + target * axisStride];
    }

    /// <summary>
    /// out[o] = Σ src[i] over the i whose coordinates equal o's off the axis and whose index is o's axis
    /// coordinate. One thread per output walks the source's axis in order: no atomics, fixed order.
    /// </summary>
    /// <remarks>The source (and the index, of the same shape) has each dim no larger than the output's.</remarks>
    public static void ScatterAddPerOutput<T, C>(Index1D o, int outAxis,
        ArrayView<int> outShape, ArrayView<int> srcShape, int rank, int axis,
        ArrayView<T> src, Strided srcAt, ArrayView<int> index, Strided indexAt, int srcAxis, ArrayView<T> y, ArrayView<int> err)
        where T : unmanaged where C : struct, IElem<T>
    {
        // The output's coordinates, and the number of the source element with the same coordinates
        // and axis coordinate 0 (when every coordinate fits in the source).
        int rem = o, srcNumber = 0, srcStride = 1, axisCoord = 0, axisStrideInSrc = 0;
        bool fits = true;
        for (int d = rank - 1; d >= 0; d--)
        {
            int c = rem % outShape[d];
            rem /= outShape[d];
            if (d == axis) { axisCoord = c; axisStrideInSrc = srcStride; }
            else { if (c >= srcShape[d]) fits = false; srcNumber += c * srcStride; }
            srcStride *= srcShape[d];
        }
        double acc = 0;
        if (fits)
            for (int k = 0; k < srcAxis; k++)
            {
                int s = srcNumber + k * axisStrideInSrc;
                int target = index[indexAt.At(s)];
                if (target < 0 || target >= outAxis) { err[0] = 1; err[1] = target; err[2] = s; continue; }
                if (target == axisCoord) acc += C.Get(src[srcAt.At(s)]);
            }
        y[o] = C.Put(acc);
    }
}
