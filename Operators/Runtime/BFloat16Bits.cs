using System.Numerics;
using System.Runtime.InteropServices;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// bfloat16 (1 sign, 8 exponent, 7 stored mantissa bits: the upper half of a float32) held as its raw 16 bits.
/// Neither .NET 10's base library nor System.Numerics.Tensors 10.0.0 has a bfloat16 type or conversion, so the two
/// directions are written here: widening is exact (append 16 zero bits); narrowing rounds to nearest, ties to even,
/// overflows to infinity, and keeps NaN a NaN (sign and upper payload bits kept, quiet bit set) where plain rounding
/// or truncation could carry a NaN whose payload lies in the low 16 bits onto infinity.
/// </summary>
public static class BFloat16Bits
{
    private const uint QuietBit = 0x0040;

    /// <summary>The float32 with the same value (exact).</summary>
    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>The nearest bfloat16 (ties to even); NaN stays NaN.</summary>
    public static ushort FromSingle(float value)
    {
        var b = BitConverter.SingleToUInt32Bits(value);
        if ((b & 0x7FFF_FFFF) > 0x7F80_0000)
        {
            return (ushort)((b >> 16) | QuietBit);
        }
        // Adding 0x7FFF plus the lowest kept bit carries into the kept half exactly when the dropped half is above
        // one half, or equal to it with an odd kept half. Finite values stay below 0xFF80_0000 + 0x8000, so no overflow.
        return (ushort)((b + 0x7FFF + ((b >> 16) & 1)) >> 16);
    }

    /// <summary>Widens <paramref name="source"/> into <paramref name="destination"/> (same length).</summary>
    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException("destination is shorter than source", nameof(destination));
        }
        var bits = MemoryMarshal.Cast<float, uint>(destination);
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var step = Vector<ushort>.Count;
            for (; i <= source.Length - step; i += step)
            {
                Vector.Widen(new Vector<ushort>(source[i..]), out var low, out var high);
                Vector.ShiftLeft(low, 16).CopyTo(bits[i..]);
                Vector.ShiftLeft(high, 16).CopyTo(bits[(i + Vector<uint>.Count)..]);
            }
        }
        for (; i < source.Length; i++)
        {
            bits[i] = (uint)source[i] << 16;
        }
    }

    /// <summary>Narrows <paramref name="source"/> into <paramref name="destination"/> (same length), as <see cref="FromSingle(float)"/>.</summary>
    public static void FromSingle(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException("destination is shorter than source", nameof(destination));
        }
        var bits = MemoryMarshal.Cast<float, uint>(source);
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var step = Vector<ushort>.Count;
            for (; i <= bits.Length - step; i += step)
            {
                var low = Narrow(new Vector<uint>(bits[i..]));
                var high = Narrow(new Vector<uint>(bits[(i + Vector<uint>.Count)..]));
                Vector.Narrow(low, high).CopyTo(destination[i..]);
            }
        }
        for (; i < bits.Length; i++)
        {
            destination[i] = FromSingle(BitConverter.UInt32BitsToSingle(bits[i]));
        }
    }

    /// <summary>The lane-wise <see cref="FromSingle(float)"/>, left in the low 16 bits of each lane.</summary>
    private static Vector<uint> Narrow(Vector<uint> b)
    {
        var isNaN = Vector.GreaterThan(b & new Vector<uint>(0x7FFF_FFFF), new Vector<uint>(0x7F80_0000));
        var upper = Vector.ShiftRightLogical(b, 16);
        var rounded = Vector.ShiftRightLogical(b + new Vector<uint>(0x7FFF) + (upper & Vector<uint>.One), 16);
        return Vector.ConditionalSelect(isNaN, upper | new Vector<uint>(QuietBit), rounded);
    }
}
