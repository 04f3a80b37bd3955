using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace MiniDeep.IO;

/// <summary>
/// Tensor elements as the bytes file formats store them (safetensors, .npy): row-major, little-endian,
/// bool as one byte 0 or 1. On a little-endian machine both directions are one block copy.
/// </summary>
internal static class ElementBytes
{
    /// <summary>The little-endian bytes of a host array (float[], double[], int[], long[] or bool[]).</summary>
    public static byte[] Encode(Array values) => values switch
    {
        float[] f => Little<float>(f),
        double[] d => Little<double>(d),
        int[] n => Little<int>(n),
        long[] l => Little<long>(l),   // ONNX's shape tensors
        bool[] z => [.. z.Select(v => v ? (byte)1 : (byte)0)],
        _ => throw new NotSupportedException($"no byte encoding for {values.GetType().Name}"),
    };

    private static byte[] Little<T>(T[] values) where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
        if (!BitConverter.IsLittleEndian) Reverse(bytes, System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        return bytes;
    }

    /// <summary>
    /// The elements of <paramref name="dtype"/> in <paramref name="bytes"/> (whose length is a whole
    /// number of elements), stored little- or big-endian; <paramref name="badBool"/> makes the error for
    /// a bool byte that is not 0 or 1 (element index, byte).
    /// </summary>
    public static Array Decode(DType dtype, ReadOnlySpan<byte> bytes, bool littleEndian, Func<int, byte, Exception> badBool)
    {
        if (dtype == DType.Bool)
        {
            var z = new bool[bytes.Length];
            for (int i = 0; i < z.Length; i++) z[i] = bytes[i] switch { 0 => false, 1 => true, _ => throw badBool(i, bytes[i]) };
            return z;
        }
        int size = dtype.SizeOf();
        var copy = bytes.ToArray();
        if (littleEndian != BitConverter.IsLittleEndian) Reverse(copy, size);
        return dtype switch
        {
            DType.Float32 => MemoryMarshal.Cast<byte, float>(copy).ToArray(),
            DType.Float64 => MemoryMarshal.Cast<byte, double>(copy).ToArray(),
            _ => MemoryMarshal.Cast<byte, int>(copy).ToArray(),
        };
    }

    // Swaps the byte order of each element in place.
    private static void Reverse(byte[] bytes, int size)
    {
        for (int i = 0; i < bytes.Length; i += size) bytes.AsSpan(i, size).Reverse();
    }
}
