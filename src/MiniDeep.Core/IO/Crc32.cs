namespace MiniDeep.IO;

/// <summary>
/// CRC-32 as zip, gzip and PNG compute it (IEEE 802.3: the reflected polynomial 0xEDB88320, initial
/// value and final xor 0xFFFFFFFF; the check value of "123456789" is 0xCBF43926). It finds every burst
/// of damage up to 32 bits and all but one in 2³² of the rest: a guard against a damaged file, not
/// against a forged one (a checkpoint uses SHA-256 for that).
/// </summary>
public static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    // Entry b: the CRC register after shifting in byte b alone, eight polynomial divisions at a time.
    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint b = 0; b < 256; b++)
        {
            uint r = b;
            for (int bit = 0; bit < 8; bit++) r = (r & 1) != 0 ? (r >> 1) ^ 0xEDB88320u : r >> 1;
            table[b] = r;
        }
        return table;
    }

    /// <summary>The CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }
}
