using System.Reflection;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace MiniDeep.Gpu;

/// <summary>
/// The GPU devices: <c>cuda</c> (an NVIDIA GPU through ILGPU's CUDA accelerator) and <c>ilgpu-cpu</c>
/// (ILGPU's CPU accelerator: the same kernels on host threads, for tests and machines without a GPU).
/// Asking for a device registers its backend with <see cref="Backends"/>, after which tensors and
/// modules move to it with <c>To(device)</c> and every op on them runs there.
/// </summary>
/// <example>
/// <code>
/// var device = GpuDevices.Get("cuda");          // or GpuDevices.Get("ilgpu-cpu")
/// model.To(device);
/// var loss = Losses.CrossEntropy(model.Forward(x.To(device)), y.To(device));
/// </code>
/// </example>
public static class GpuDevices
{
    private static readonly Lock Gate = new();
    private static Context? s_context;
    private static readonly Dictionary<Device, GpuBackend> s_backends = [];
    private static KernelCompiler? s_compiler;

    /// <summary>The device kind of CUDA GPUs.</summary>
    public const string CudaKind = "cuda";
    /// <summary>The device kind of ILGPU's CPU accelerator.</summary>
    public const string CpuAcceleratorKind = "ilgpu-cpu";

    private static readonly List<Context> s_cpuContexts = [];

    // CUDA devices share one context; each CPU accelerator gets its own (its device shape is fixed per context).
    private static Context Context
    {
        get
        {
            lock (Gate)
                return s_context ??= Context.Create(b => b.Cuda().EnableAlgorithms());
        }
    }

    // ILGPU's CPU accelerator runs every launch through a barrier of all the threads of a group, so its
    // cost per launch grows with the group size (measured on 2 cores: about 0.35 ms with groups of 4,
    // 2.4–3.3 ms with groups of 256). ilgpu-cpu uses groups of 4, which suits every kernel but the two
    // that share group memory; ilgpu-cpu:1 has a GPU's shape (warps of 32, groups up to 1024) for those.
    private static CPUDevice CpuShape(int index) => index == 0 ? new CPUDevice(2, 2, 1) : CPUDevice.GetDevice(CPUDeviceKind.Nvidia);

    /// <summary>Checks every kernel by compiling it to PTX for sm_90 before it is loaded (see <see cref="KernelCompiler"/>).</summary>
    public static KernelCompiler Compiler { get { lock (Gate) return s_compiler ??= new KernelCompiler(); } }

    /// <summary>The devices ILGPU finds here, in the form <see cref="Get"/> accepts, with their names.</summary>
    public static IReadOnlyList<string> Available()
    {
        var list = new List<string>();
        int cuda = 0;
        foreach (var d in Context.Devices)
            if (d.AcceleratorType == AcceleratorType.Cuda) list.Add($"{CudaKind}:{cuda++} ({d.Name}, {d.MemorySize / (1 << 20):N0} MiB)");
        list.Add($"{CpuAcceleratorKind} (ILGPU's CPU accelerator, groups of 4 threads)");
        list.Add($"{CpuAcceleratorKind}:1 (ILGPU's CPU accelerator shaped like a GPU: warps of 32, groups up to 1024)");
        return list;
    }

    /// <summary>The CUDA GPU with this index; throws naming the devices found when there is none.</summary>
    public static Device Cuda(int index = 0) => Get(index == 0 ? CudaKind : $"{CudaKind}:{index}");

    /// <summary>ILGPU's CPU accelerator.</summary>
    public static Device CpuAccelerator() => Get(CpuAcceleratorKind);

    /// <summary>
    /// The device named "cuda", "cuda:N" or "ilgpu-cpu" ("cpu" and "reference" name the CPU backends),
    /// its backend registered. An unknown name, or CUDA where there is none, throws with the devices found.
    /// </summary>
    public static Device Get(string name)
    {
        if (name is "cpu") return Device.Cpu;
        if (name is "reference") return Device.Reference;
        var (kind, index) = Parse(name);
        var device = new Device(kind, index);
        lock (Gate)
        {
            if (s_backends.ContainsKey(device)) return device;
            var accelerator = Create(kind, index, name);
            var backend = new GpuBackend(device, accelerator, Compiler);
            s_backends[device] = backend;
            Backends.Register(device, backend);
            return device;
        }
    }

    /// <summary>The backend of a GPU device obtained from <see cref="Get"/>.</summary>
    public static GpuBackend Backend(Device device)
    {
        lock (Gate)
            return s_backends.TryGetValue(device, out var b) ? b
                : throw new InvalidOperationException($"'{device}' is not a GPU device in use; GPU devices in use: {(s_backends.Count == 0 ? "none" : string.Join(", ", s_backends.Keys))}");
    }

    private static (string Kind, int Index) Parse(string name)
    {
        var parts = name.Split(':');
        string kind = parts[0].Trim().ToLowerInvariant();
        int index = 0;
        if (kind is not (CudaKind or CpuAcceleratorKind) || parts.Length > 2 || (parts.Length == 2 && (!int.TryParse(parts[1], out index) || index < 0)))
            throw new DeviceNotFoundException($"unknown device '{name}': use cpu, reference, {CudaKind}, {CudaKind}:N or {CpuAcceleratorKind}; found here: {string.Join("; ", Available())}");
        return (kind, index);
    }

    private static Accelerator Create(string kind, int index, string name)
    {
        if (kind == CpuAcceleratorKind)
        {
            if (index > 1) throw new DeviceNotFoundException($"device '{name}': the CPU accelerator comes as {CpuAcceleratorKind} and {CpuAcceleratorKind}:1; found here: {string.Join("; ", Available())}");
            var shape = CpuShape(index);
            var context = Context.Create(b => b.CPU(shape).EnableAlgorithms());
            s_cpuContexts.Add(context);
            return context.Devices.First(d => d.AcceleratorType == AcceleratorType.CPU).CreateAccelerator(context);
        }
        var gpus = Context.Devices.Where(d => d.AcceleratorType == AcceleratorType.Cuda).ToList();
        if (index >= gpus.Count)
            throw new DeviceNotFoundException(gpus.Count == 0
                ? $"device '{name}': no CUDA GPU was found (no NVIDIA driver, or no device visible); devices found: {string.Join("; ", Available())}. Use --device {CpuAcceleratorKind} to run the GPU kernels on the CPU."
                : $"device '{name}': there are {gpus.Count} CUDA GPUs (cuda:0 to cuda:{gpus.Count - 1}); devices found: {string.Join("; ", Available())}");
        return gpus[index].CreateAccelerator(Context);
    }
}

/// <summary>
/// Compiles kernels to PTX for sm_90 (the H200's architecture) with ILGPU's PTX backend, which needs no
/// GPU. Every kernel passes through it before the device loads it: ILGPU leaves a context unusable after
/// a kernel fails to compile, and here that context is this compiler's scratch one, recreated after a
/// failure, never the one holding the device's buffers. It also gives CI a CUDA code-generation check.
/// </summary>
public sealed class KernelCompiler : IDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<MethodInfo, string> _ptx = [];
    private Context _context;
    private PTXBackend _backend;

    /// <summary>The architecture kernels are compiled for.</summary>
    public static readonly CudaArchitecture Architecture = CudaArchitecture.SM_90;
    /// <summary>The PTX ISA version used (8.0: CUDA 12.0, the first to know sm_90's full feature set).</summary>
    public static readonly CudaInstructionSet InstructionSet = CudaInstructionSet.ISA_80;

    /// <summary>A compiler with its own scratch context.</summary>
    public KernelCompiler() => (_context, _backend) = Fresh();

    private static (Context, PTXBackend) Fresh()
    {
        var context = Context.Create(b => b.CPU().EnableAlgorithms());
        return (context, new PTXBackend(context, Architecture, InstructionSet, null!));
    }

    /// <summary>Kernels compiled so far.</summary>
    public int Count { get { lock (_gate) return _ptx.Count; } }

    /// <summary>The PTX of every kernel compiled so far, by kernel name.</summary>
    public IReadOnlyDictionary<string, string> Ptx { get { lock (_gate) return _ptx.ToDictionary(p => KernelName(p.Key), p => p.Value); } }

    /// <summary>A readable name of a kernel instantiation, e.g. "Elementwise.UnaryF32&lt;ExpOp&gt;".</summary>
    public static string KernelName(MethodInfo m) =>
        $"{m.DeclaringType?.Name}.{m.Name}" + (m.IsGenericMethod ? $"<{string.Join(", ", m.GetGenericArguments().Select(a => a.Name))}>" : "");

    /// <summary>Compiles the kernel to PTX (once); throws <see cref="GpuKernelException"/> when ILGPU cannot.</summary>
    public string Check(MethodInfo kernel, bool grouped)
    {
        lock (_gate)
        {
            if (_ptx.TryGetValue(kernel, out var done)) return done;
            try
            {
                var entry = grouped ? EntryPointDescription.FromExplicitlyGroupedKernel(kernel) : EntryPointDescription.FromImplicitlyGroupedKernel(kernel);
                var compiled = (PTXCompiledKernel)_backend.Compile(entry, new KernelSpecialization());
                return _ptx[kernel] = compiled.PTXAssembly;
            }
            catch (Exception e)
            {
                _backend.Dispose();
                _context.Dispose();
                (_context, _backend) = Fresh();
                throw new GpuKernelException($"gpu: kernel {KernelName(kernel)} does not compile to PTX for {Architecture}: {e.Message}", e);
            }
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate) { _backend.Dispose(); _context.Dispose(); }
    }
}

/// <summary>A device that is not here, or a device name MiniDeep does not know; the message lists the devices found.</summary>
public sealed class DeviceNotFoundException(string message) : InvalidOperationException(message);

/// <summary>A kernel that ILGPU could not compile; the device and its buffers stay usable.</summary>
public sealed class GpuKernelException(string message, Exception inner) : Exception(message, inner);
