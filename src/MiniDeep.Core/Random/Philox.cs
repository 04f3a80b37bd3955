using System.Runtime.CompilerServices;
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
    /// uses: the same values as <see cref="Block"/>, computed for 32 (AVX-512) or 16 (AVX2) counters at once.
    /// Each 64-bit lane holds one 32-bit counter word, so one unsigned 32×32→64 multiply per lane
    /// (vpmuludq) gives a round's high and low halves. The ten rounds are a chain of dependent
    /// multiplies, so one vector alone waits on the multiplier's latency: four independent vectors
    /// of counters go through each round together, which keeps the multiplier busy (1.8× the words a
    /// second of one vector at a time, on one Zen 5 core).
    /// </summary>
    public static void FirstWords(ulong seed, ulong stream, ulong start, Span<uint> destination)
    {
        int i = 0, n = destination.Length;
        if (Avx512F.IsSupported)
        {
            for (; i + 32 <= n; i += 32)
            {
                Lanes512 a = new(seed, stream, start + (ulong)i), b = new(seed, stream, start + (ulong)i + 8),
                         c = new(seed, stream, start + (ulong)i + 16), d = new(seed, stream, start + (ulong)i + 24);
                for (int r = 0; r < 10; r++) { a.Round(r); b.Round(r); c.Round(r); d.Round(r); }
                // Narrow keeps each lane's low 32 bits: lanes of the first vector, then of the second.
                Vector512.Narrow(a.C0, b.C0).CopyTo(destination[i..]);
                Vector512.Narrow(c.C0, d.C0).CopyTo(destination[(i + 16)..]);
            }
            for (; i + 8 <= n; i += 8)
            {
                Lanes512 a = new(seed, stream, start + (ulong)i);
                for (int r = 0; r < 10; r++) a.Round(r);
                Vector256.Narrow(a.C0.GetLower(), a.C0.GetUpper()).CopyTo(destination[i..]);
            }
        }
        if (Avx2.IsSupported)
        {
            for (; i + 16 <= n; i += 16)
            {
                Lanes256 a = new(seed, stream, start + (ulong)i), b = new(seed, stream, start + (ulong)i + 4),
                         c = new(seed, stream, start + (ulong)i + 8), d = new(seed, stream, start + (ulong)i + 12);
                for (int r = 0; r < 10; r++) { a.Round(r); b.Round(r); c.Round(r); d.Round(r); }
                Vector256.Narrow(a.C0, b.C0).CopyTo(destination[i..]);
                Vector256.Narrow(c.C0, d.C0).CopyTo(destination[(i + 8)..]);
            }
            for (; i + 4 <= n; i += 4)
            {
                Lanes256 a = new(seed, stream, start + (ulong)i);
                for (int r = 0; r < 10; r++) a.Round(r);
                Vector128.Narrow(a.C0.GetLower(), a.C0.GetUpper()).CopyTo(destination[i..]);
            }
        }
        for (; i < n; i++) destination[i] = Block(seed, stream, start + (ulong)i).Item1;
    }

    // The round keys: k0 + r·W0 and k1 + r·W1 (mod 2^32), as Block's running sums give them.
    private static ulong Key0(ulong seed, int r) => (uint)((uint)seed + (uint)r * W0);
    private static ulong Key1(ulong seed, int r) => (uint)((uint)(seed >> 32) + (uint)r * W1);

    /// <summary>Philox state of 8 consecutive counters, one 32-bit word per 64-bit lane (AVX-512).</summary>
    private struct Lanes512
    {
        public Vector512<ulong> C0, C1, C2, C3;
        private readonly ulong _seed;

        public Lanes512(ulong seed, ulong stream, ulong first)
        {
            var index = Vector512.Create(first) + Vector512.Create(0UL, 1, 2, 3, 4, 5, 6, 7);
            C0 = index & Vector512.Create(0xFFFF_FFFFUL); C1 = index >> 32;
            C2 = Vector512.Create((ulong)(uint)stream); C3 = Vector512.Create(stream >> 32);
            _seed = seed;
        }

        // Block's round: vpmuludq multiplies the low 32 bits of each lane into a full 64-bit product.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Round(int r)
        {
            var low = Vector512.Create(0xFFFF_FFFFUL);
            var p0 = Avx512F.Multiply(C0.AsUInt32(), Vector512.Create((ulong)M0).AsUInt32());
            var p1 = Avx512F.Multiply(C2.AsUInt32(), Vector512.Create((ulong)M1).AsUInt32());
            C0 = (p1 >> 32) ^ C1 ^ Vector512.Create(Key0(_seed, r));
            C2 = (p0 >> 32) ^ C3 ^ Vector512.Create(Key1(_seed, r));
            C1 = p1 & low; C3 = p0 & low;
        }
    }

    /// <summary>Philox state of 4 consecutive counters, one 32-bit word per 64-bit lane (AVX2).</summary>
    private struct Lanes256
    {
        public Vector256<ulong> C0, C1, C2, C3;
        private readonly ulong _seed;

        public Lanes256(ulong seed, ulong stream, ulong first)
        {
            var index = Vector256.Create(first) + Vector256.Create(0UL, 1, 2, 3);
            C0 = index & Vector256.Create(0xFFFF_FFFFUL); C1 = index >> 32;
            C2 = Vector256.Create((ulong)(uint)stream); C3 = Vector256.Create(stream >> 32);
            _seed = seed;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Round(int r)
        {
            var low = Vector256.Create(0xFFFF_FFFFUL);
            var p0 = Avx2.Multiply(C0.AsUInt32(), Vector256.Create((ulong)M0).AsUInt32());
            var p1 = Avx2.Multiply(C2.AsUInt32(), Vector256.Create((ulong)M1).AsUInt32());
            C0 = (p1 >> 32) ^ C1 ^ Vector256.Create(Key0(_seed, r));
            C2 = (p0 >> 32) ^ C3 ^ Vector256.Create(Key1(_seed, r));
            C1 = p1 & low; C3 = p0 & low;
        }
    }

    /// <summary>
    /// <see cref="UniformFloat"/> scaled to [low, high) for counters start, start + 1, ..., each value
    /// (float)(low + (high − low)·u) computed in double: the float32 uniform fill, bit for bit, with
    /// the conversion done a vector at a time.
    /// </summary>
    public static void UniformFloats(ulong seed, ulong stream, ulong start, double low, double high, Span<float> destination) =>
        FillFloats(seed, stream, start, destination, new UniformFromWords(low, high));

    /// <summary>
    /// Bernoulli(p) as 0 or 1 for counters start, start + 1, ...: 1 where <see cref="UniformFloat"/> &lt; p.
    /// That u is k/2^24 for the integer k = word &gt;&gt; 8, so u &lt; p exactly when k &lt; ⌈p·2^24⌉, and the
    /// draw is one integer compare (p·2^24 is exact in double: a power-of-two scaling).
    /// </summary>
    public static void BernoulliFloats(ulong seed, ulong stream, ulong start, double p, Span<float> destination)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"Bernoulli: p must lie in [0, 1], got {p}");
        FillFloats(seed, stream, start, destination, new BernoulliFromWords((uint)Math.Ceiling(p * (1 << 24))));
    }

    // The float fills: words a chunk at a time, each chunk converted while it is in L1. The conversion
    // is a struct type argument, so each fill gets its own compiled loop with the conversion inlined.
    private static void FillFloats<TConvert>(ulong seed, ulong stream, ulong start, Span<float> destination, TConvert convert)
        where TConvert : struct, IFromWords
    {
        Span<uint> words = stackalloc uint[ChunkWords];
        for (int from = 0; from < destination.Length; from += ChunkWords)
        {
            var w = words[..Math.Min(ChunkWords, destination.Length - from)];
            FirstWords(seed, stream, start + (ulong)from, w);
            convert.Convert(w, destination.Slice(from, w.Length));
        }
    }

    private interface IFromWords
    {
        void Convert(ReadOnlySpan<uint> words, Span<float> destination);
    }

    // (float)(low + (high − low)·u) in double, u = (word >> 8)·2^-24 as UniformFloat has it.
    private readonly struct UniformFromWords(double low, double high) : IFromWords
    {
        public void Convert(ReadOnlySpan<uint> w, Span<float> d)
        {
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var lo = Vector512.Create(low); var range = Vector512.Create(high - low);
                for (; j + 16 <= w.Length; j += 16)
                {
                    // A 24-bit integer converts to float exactly and 2^-24 scales it exactly: u is UniformFloat's.
                    var u = Vector512.ConvertToSingle((Vector512.Create(w.Slice(j, 16)) >> 8).AsInt32()) * Vector512.Create(1f / (1 << 24));
                    var (ul, uh) = Vector512.Widen(u);
                    Vector512.Narrow(lo + range * ul, lo + range * uh).CopyTo(d[j..]);
                }
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var lo = Vector256.Create(low); var range = Vector256.Create(high - low);
                for (; j + 8 <= w.Length; j += 8)
                {
                    var u = Vector256.ConvertToSingle((Vector256.Create(w.Slice(j, 8)) >> 8).AsInt32()) * Vector256.Create(1f / (1 << 24));
                    var (ul, uh) = Vector256.Widen(u);
                    Vector256.Narrow(lo + range * ul, lo + range * uh).CopyTo(d[j..]);
                }
            }
            for (; j < w.Length; j++) d[j] = (float)(low + (high - low) * ((w[j] >> 8) * (1f / (1 << 24))));
        }
    }

    // 1 where (word >> 8) < threshold, else 0.
    private readonly struct BernoulliFromWords(uint threshold) : IFromWords
    {
        public void Convert(ReadOnlySpan<uint> w, Span<float> d)
        {
            int j = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var t = Vector512.Create(threshold); var one = Vector512.Create(1f).AsUInt32();
                for (; j + 16 <= w.Length; j += 16)
                    (Vector512.LessThan(Vector512.Create(w.Slice(j, 16)) >> 8, t) & one).AsSingle().CopyTo(d[j..]);
            }
            else if (Vector256.IsHardwareAccelerated)
            {
                var t = Vector256.Create(threshold); var one = Vector256.Create(1f).AsUInt32();
                for (; j + 8 <= w.Length; j += 8)
                    (Vector256.LessThan(Vector256.Create(w.Slice(j, 8)) >> 8, t) & one).AsSingle().CopyTo(d[j..]);
            }
            for (; j < w.Length; j++) d[j] = (w[j] >> 8) < threshold ? 1f : 0f;
        }
    }

    // Words made per pass of the float fills: 2 KB on the stack, well inside L1.
    private const int ChunkWords = 512;

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
