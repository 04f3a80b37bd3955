namespace MiniDeep;

/// <summary>Where a tensor's storage lives and which backend computes on it.</summary>
public sealed record Device(string Kind, int Index = 0)
{
    /// <summary>The SIMD CPU backend: TensorPrimitives, our own GEMM, both cores.</summary>
    public static readonly Device Cpu = new("cpu");
    /// <summary>The scalar reference backend: slow, obvious loops that define what every op must compute.</summary>
    public static readonly Device Reference = new("reference");

    /// <summary>Device used by factory functions when none is named. Set it once at start-up.</summary>
    public static Device Default { get; set; } = Cpu;

    /// <summary>The backend that computes on this device.</summary>
    public IBackend Backend => Backends.For(this);

    /// <inheritdoc/>
    public override string ToString() => Index == 0 ? Kind : $"{Kind}:{Index}";
}

/// <summary>The registry of backends. The GPU package registers its own devices here.</summary>
public static class Backends
{
    private static readonly Dictionary<Device, IBackend> Registered = new()
    {
        [Device.Cpu] = new Cpu.CpuBackend(),
        [Device.Reference] = new Reference.ReferenceBackend(),
    };
    private static readonly Lock Gate = new();

    /// <summary>Registers (or replaces) the backend for a device.</summary>
    public static void Register(Device device, IBackend backend)
    {
        lock (Gate) Registered[device] = backend;
    }

    /// <summary>The backend for <paramref name="device"/>; throws naming the devices known when there is none.</summary>
    public static IBackend For(Device device)
    {
        lock (Gate)
        {
            if (Registered.TryGetValue(device, out var b)) return b;
            throw new InvalidOperationException(
                $"no backend for device '{device}'; known devices: {string.Join(", ", Registered.Keys)}");
        }
    }
}
