using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MiniDeep;

/// <summary>
/// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
/// counter-based generator. The value for element i is a pure function of (seed, stream, i), so a
/// tensor's random contents never depend on how many threads filled it, in which order, or on which
/// backend. A stateful generator (Mersenne Twister, xorshift) would tie results to the fill order.
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57;
    private const uint W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>Four 32-bit random words for counter (index, stream) under key seed.</summary>
    public static (uint, uint, uint, uint) Block(ulong seed, ulong stream, ulong index)
    {
        uint c0 = (uint)index, c1 = (uint)(index >> 32), c2 = (uint)stream, c3 = (uint)(stream >> 32);
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int r = 0; r < 10; r++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            uint n1 = (uint)p1;
            uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            uint n3 = (uint)p0;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
            k0 += W0; k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>
    /// The first word of the blocks for counters start, start + 1, ..., the word <see cref="UniformFloat"/>
    /// uses: the same values as <see cref="Block"/>, computed for 8 (AVX-512) or 4 (AVX2) counters at once.
    /// Each 64-bit lane holds one 32-bit counter word, so one unsigned 32×32→64 multiply per lane
    /// (vpmuludq) gives a round's high and low halves.
    /// </summary>
    public static void FirstWords(ulong seed, ulong stream, ulong start, Span<uint> destination)
    {
        int i = 0, n = destination.Length;
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        if (Avx512F.IsSupported && n >= 8)
        {
            var low = Vector512.Create(0xFFFF_FFFFUL);
            var m0 = Vector512.Create((ulong)M0).AsUInt32();
            var m1 = Vector512.Create((ulong)M1).AsUInt32();
            var lanes = Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
            Span<ulong> words = stackalloc ulong[8];
            for (; i + 8 <= n; i += 8)
            {
                var index = Vector512.Create(start + (ulong)i) + lanes;
                Vector512<ulong> c0 = index & low, c1 = index >> 32, c2 = Vector512.Create((ulong)(uint)stream), c3 = Vector512.Create(stream >> 32);
                uint r0 = k0, r1 = k1;
                for (int r = 0; r < 10; r++)
                {
                    var p0 = Avx512F.Multiply(c0.AsUInt32(), m0);
                    var p1 = Avx512F.Multiply(c2.AsUInt32(), m1);
                    var n0 = (p1 >> 32) ^ c1 ^ Vector512.Create((ulong)r0);
                    var n2 = (p0 >> 32) ^ c3 ^ Vector512.Create((ulong)r1);
                    c1 = p1 & low; c3 = p0 & low; c0 = n0; c2 = n2;
                    r0 += W0; r1 += W1;
                }
                c0.CopyTo(words);
                for (int l = 0; l < 8; l++) destination[i + l] = (uint)words[l];
            }
        }
        if (Avx2.IsSupported && n - i >= 4)
        {
            var low = Vector256.Create(0xFFFF_FFFFUL);
            var m0 = Vector256.Create((ulong)M0).AsUInt32();
            var m1 = Vector256.Create((ulong)M1).AsUInt32();
            var lanes = Vector256.Create(0UL, 1, 2, 3);
            Span<ulong> words = stackalloc ulong[4];
            for (; i + 4 <= n; i += 4)
            {
                var index = Vector256.Create(start + (ulong)i) + lanes;
                Vector256<ulong> c0 = index & low, c1 = index >> 32, c2 = Vector256.Create((ulong)(uint)stream), c3 = Vector256.Create(stream >> 32);
                uint r0 = k0, r1 = k1;
                for (int r = 0; r < 10; r++)
                {
                    var p0 = Avx2.Multiply(c0.AsUInt32(), m0);
                    var p1 = Avx2.Multiply(c2.AsUInt32(), m1);
                    var n0 = (p1 >> 32) ^ c1 ^ Vector256.Create((ulong)r0);
                    var n2 = (p0 >> 32) ^ c3 ^ Vector256.Create((ulong)r1);
                    c1 = p1 & low; c3 = p0 & low; c0 = n0; c2 = n2;
                    r0 += W0; r1 += W1;
                }
                c0.CopyTo(words);
                for (int l = 0; l < 4; l++) destination[i + l] = (uint)words[l];
            }
        }
        for (; i < n; i++) destination[i] = Block(seed, stream, start + (ulong)i).Item1;
    }

    /// <summary>Uniform on [0, 1) with 24 random bits (every float in the grid 2^-24·k is equally likely).</summary>
    public static float UniformFloat(ulong seed, ulong stream, ulong index)
    {
        var (a, _, _, _) = Block(seed, stream, index);
        return (a >> 8) * (1f / (1 << 24));
    }

    /// <summary>Uniform on [0, 1) with 53 random bits.</summary>
    public static double UniformDouble(ulong seed, ulong stream, ulong index)
    {
        var (a, b, _, _) = Block(seed, stream, index);
        return ((((ulong)a << 32) | b) >> 11) * (1.0 / (1UL << 53));
    }

    /// <summary>Standard normal by Box–Muller on two words of the block, computed in double so that
    /// float32 and float64 tensors of the same seed agree to rounding.</summary>
    public static double Normal(ulong seed, ulong stream, ulong index)
    {
        var (a, b, c, d) = Block(seed, stream, index);
        // u1 in (0, 1]: never 0, so the log is finite.
        double u1 = (((((ulong)a << 32) | b) >> 11) + 1) * (1.0 / (1UL << 53));
        double u2 = ((((ulong)c << 32) | d) >> 11) * (1.0 / (1UL << 53));
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Integer uniform on [low, high) by multiply-shift of a 32-bit word (bias below 2^-32 · range).</summary>
    public static int Integer(ulong seed, ulong stream, ulong index, int low, int high)
    {
        var (a, _, _, _) = Block(seed, stream, index);
        ulong range = (ulong)((long)high - low);
        return (int)(low + (long)((a * range) >> 32));
    }
}

/// <summary>
/// The seeded source of every random number in MiniDeep. Each draw (one tensor fill) takes the next
/// stream number; element i of that draw is Philox(seed, stream, i). Saving <see cref="Seed"/> and
/// <see cref="Offset"/> restores the generator exactly.
/// </summary>
public sealed class Generator
{
    private long _offset;

    /// <summary>A generator with the given seed.</summary>
    public Generator(ulong seed) { Seed = seed; }

    /// <summary>The seed (Philox key).</summary>
    public ulong Seed { get; private set; }

    /// <summary>Streams used so far: the next draw uses stream <see cref="Offset"/>.</summary>
    public ulong Offset
    {
        get => (ulong)Interlocked.Read(ref _offset);
        set => Interlocked.Exchange(ref _offset, (long)value);
    }

    /// <summary>Reserves the next stream number.</summary>
    public ulong NextStream() => (ulong)(Interlocked.Increment(ref _offset) - 1);

    /// <summary>Restarts from stream 0 with a new seed.</summary>
    public void ManualSeed(ulong seed) { Seed = seed; Offset = 0; }

    /// <summary>A new generator whose seed is derived from this one's next stream: for giving a component
    /// (a data loader, a dropout layer) its own sequence without sharing state.</summary>
    public Generator Fork()
    {
        var (a, b, _, _) = Philox.Block(Seed, NextStream(), 0);
        return new Generator(((ulong)a << 32) | b);
    }

    /// <summary>The process-wide default generator (seed 0 until <see cref="ManualSeed"/> is called on it).</summary>
    public static Generator Default { get; } = new(0);
}
