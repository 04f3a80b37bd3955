using System.Buffers.Binary;
using System.Text;

namespace MiniDeep.IO;

/// <summary>
/// A protocol-buffers message encoder: just the wire format, enough to write ONNX without a code
/// generator or a runtime dependency in the package. Each field is a key (field number &lt;&lt; 3 | wire
/// type) followed by its value: a varint (type 0), 4 little-endian bytes (type 5) or a length-prefixed
/// run of bytes (type 2: strings, bytes, nested messages). Fields are written in the order the
/// caller gives them, so the same calls give the same bytes.
/// </summary>
/// <remarks>Specification: protobuf.dev/programming-guides/encoding.</remarks>
internal sealed class ProtoWriter
{
    private const int WireVarint = 0, WireLengthDelimited = 2, WireFixed32 = 5;
    private readonly MemoryStream _bytes = new();

    /// <summary>The bytes written so far.</summary>
    public byte[] ToArray() => _bytes.ToArray();

    /// <summary>An int32, int64, enum or bool field. Negative values take ten bytes (two's complement
    /// as a 64-bit varint), as the encoding prescribes for int32 and int64 alike.</summary>
    public ProtoWriter Int(int field, long value)
    {
        Key(field, WireVarint);
        Varint(unchecked((ulong)value));
        return this;
    }

    /// <summary>A float field.</summary>
    public ProtoWriter Float(int field, float value)
    {
        Key(field, WireFixed32);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteSingleLittleEndian(b, value);
        _bytes.Write(b);
        return this;
    }

    /// <summary>A string field (UTF-8).</summary>
    public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    /// <summary>A bytes field.</summary>
    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Key(field, WireLengthDelimited);
        Varint((ulong)value.Length);
        _bytes.Write(value);
        return this;
    }

    /// <summary>An embedded message field.</summary>
    public ProtoWriter Message(int field, ProtoWriter message)
    {
        Key(field, WireLengthDelimited);
        Varint((ulong)message._bytes.Length);
        message._bytes.Position = 0;
        message._bytes.CopyTo(_bytes);
        return this;
    }

    private void Key(int field, int wireType)
    {
        if (field < 1 || field > (1 << 29) - 1) throw new ArgumentOutOfRangeException(nameof(field), $"protobuf: field number {field} out of range");
        Varint((ulong)((field << 3) | wireType));
    }

    // Seven bits per byte, least significant group first; the high bit says another byte follows.
    private void Varint(ulong value)
    {
        while (value >= 0x80)
        {
            _bytes.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        _bytes.WriteByte((byte)value);
    }
}
