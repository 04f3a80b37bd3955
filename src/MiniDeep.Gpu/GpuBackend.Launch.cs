using ILGPU;
using ILGPU.Runtime;

namespace MiniDeep.Gpu;

// Typed launchers for the kernel arities the backend uses. Each loads its kernel once (after the
// compile check, see GpuBackend.Load) and counts the launch. Generated: one overload per arity.
public sealed partial class GpuBackend
{
    internal void Run<T1>(Action<Index1D, T1> kernel, int n, T1 a1) where T1 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1);
    }

    internal void Run<T1, T2>(Action<Index1D, T1, T2> kernel, int n, T1 a1, T2 a2) where T1 : struct where T2 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2);
    }

    internal void Run<T1, T2, T3>(Action<Index1D, T1, T2, T3> kernel, int n, T1 a1, T2 a2, T3 a3) where T1 : struct where T2 : struct where T3 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3);
    }

    internal void Run<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4) where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4);
    }

    internal void Run<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4, T5>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4, a5);
    }

    internal void Run<T1, T2, T3, T4, T5, T6>(Action<Index1D, T1, T2, T3, T4, T5, T6> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4, T5, T6>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4, a5, a6);
    }

    internal void Run<T1, T2, T3, T4, T5, T6, T7>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4, T5, T6, T7>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4, a5, a6, a7);
    }

    internal void Run<T1, T2, T3, T4, T5, T6, T7, T8>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4, a5, a6, a7, a8);
    }

    internal void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4, a5, a6, a7, a8, a9);
    }

    internal void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10);
    }

    internal void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11);
    }

    internal void Run<T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12> kernel, int n, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6, T7 a7, T8 a8, T9 a9, T10 a10, T11 a11, T12 a12) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct where T8 : struct where T9 : struct where T10 : struct where T11 : struct where T12 : struct
    {
        if (n <= 0) return;
        var k = (Action<Index1D, T1, T2, T3, T4, T5, T6, T7, T8, T9, T10, T11, T12>)Load(kernel.Method, grouped: false, () => Accelerator.LoadAutoGroupedStreamKernel(kernel));
        Launched();
        k(n, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12);
    }

    internal void RunGrouped<T1, T2, T3, T4, T5>(Action<T1, T2, T3, T4, T5> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        if (config.GridDim.Size == 0) return;
        var k = (Action<KernelConfig, T1, T2, T3, T4, T5>)Load(kernel.Method, grouped: true, () => Accelerator.LoadStreamKernel(kernel));
        Launched();
        k(config, a1, a2, a3, a4, a5);
    }

    internal void RunGrouped<T1, T2, T3, T4, T5, T6>(Action<T1, T2, T3, T4, T5, T6> kernel, KernelConfig config, T1 a1, T2 a2, T3 a3, T4 a4, T5 a5, T6 a6) where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        if (config.GridDim.Size == 0) return;
        var k = (Action<KernelConfig, T1, T2, T3, T4, T5, T6>)Load(kernel.Method, grouped: true, () => Accelerator.LoadStreamKernel(kernel));
        Launched();
        k(config, a1, a2, a3, a4, a5, a6);
    }

}
