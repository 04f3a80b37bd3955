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
    // Read on every op, written almost never: readers see an immutable table without a lock (the lock
    // and the record comparison cost 5% of a tiny op, measured with perf), writers swap in a copy.
    private static volatile (Device Device, IBackend Backend)[] _table =
    [
        (Device.Cpu, new Cpu.CpuBackend()),
        (Device.Reference, new Reference.ReferenceBackend()),
    ];
    private static readonly Lock Gate = new();

    /// <summary>Registers (or replaces) the backend for a device.</summary>
    public static void Register(Device device, IBackend backend)
    {
        lock (Gate)
        {
            var table = _table.Where(e => e.Device != device).Append((device, backend)).ToArray();
            _table = table;
        }
    }

    /// <summary>The backend for <paramref name="device"/>; throws naming the devices known when there is none.</summary>
    public static IBackend For(Device device)
    {
        var table = _table;
        foreach (var (d, b) in table)
            if (ReferenceEquals(d, device)) return StepCapture.Intercept(d, b) ?? b;
        foreach (var (d, b) in table)
            if (d == device) return StepCapture.Intercept(d, b) ?? b;
        throw new InvalidOperationException(
            $"no backend for device '{device}'; known devices: {string.Join(", ", table.Select(e => e.Device))}");
    }
}
