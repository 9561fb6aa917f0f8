using NUnit.Framework;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Tests.Runtime;

/// <summary>
/// The bfloat16 converter at its edges (bit patterns worked out by hand from the format: 1 sign, 8 exponent and 7
/// mantissa bits, the upper half of a float32), and its vectorised span paths against an independent rounding
/// written with doubles.
/// </summary>
[TestFixture]
public class BFloat16BitsTests
{
    [TestCase(0x0000_0000u, (ushort)0x0000, Description = "+0")]
    [TestCase(0x8000_0000u, (ushort)0x8000, Description = "-0 keeps its sign")]
    [TestCase(0x3F80_0000u, (ushort)0x3F80, Description = "1 is exact")]
    [TestCase(0xC049_0FDBu, (ushort)0xC049, Description = "-pi: dropped half 0x0FDB is below one half")]
    [TestCase(0x3F80_8000u, (ushort)0x3F80, Description = "tie, kept half even: stays")]
    [TestCase(0x3F81_8000u, (ushort)0x3F82, Description = "tie, kept half odd: rounds up to even")]
    [TestCase(0x3F80_8001u, (ushort)0x3F81, Description = "just above one half: up")]
    [TestCase(0x3FFF_FFFFu, (ushort)0x4000, Description = "1.99999988 rounds up across the exponent boundary to 2")]
    [TestCase(0x3FFF_8000u, (ushort)0x4000, Description = "tie with odd mantissa 0x7F: carries into the exponent")]
    [TestCase(0xBFFF_C000u, (ushort)0xC000, Description = "negative: magnitude rounds up to -2")]
    [TestCase(0x7F7F_FFFFu, (ushort)0x7F80, Description = "largest float32 overflows to +Inf")]
    [TestCase(0xFF7F_FFFFu, (ushort)0xFF80, Description = "most negative float32 overflows to -Inf")]
    [TestCase(0x7F7F_7FFFu, (ushort)0x7F7F, Description = "below the overflow midpoint: largest finite bfloat16")]
    [TestCase(0x7F80_0000u, (ushort)0x7F80, Description = "+Inf")]
    [TestCase(0xFF80_0000u, (ushort)0xFF80, Description = "-Inf")]
    [TestCase(0x0000_0001u, (ushort)0x0000, Description = "smallest float32 subnormal rounds to +0")]
    [TestCase(0x8000_8000u, (ushort)0x8000, Description = "subnormal tie with even kept half: -0")]
    [TestCase(0x0000_8001u, (ushort)0x0001, Description = "subnormal above the tie: smallest bfloat16 subnormal")]
    [TestCase(0x0001_8000u, (ushort)0x0002, Description = "subnormal tie with odd kept half: up to even")]
    [TestCase(0x007F_FFFFu, (ushort)0x0080, Description = "largest subnormal rounds up to the smallest normal")]
    [TestCase(0x7FC0_0000u, (ushort)0x7FC0, Description = "quiet NaN")]
    [TestCase(0x7F80_0001u, (ushort)0x7FC0, Description = "NaN with payload only in the dropped half stays NaN (not +Inf)")]
    [TestCase(0xFF80_0001u, (ushort)0xFFC0, Description = "negative signalling NaN: sign kept, made quiet")]
    [TestCase(0x7FA5_0000u, (ushort)0x7FE5, Description = "NaN keeps its upper payload bits")]
    [TestCase(0xFFFF_FFFFu, (ushort)0xFFFF, Description = "all-ones NaN does not wrap to zero")]
    public void RoundsToNearestEvenAndKeepsNaN(uint floatBits, ushort expected)
    {
        var x = BitConverter.UInt32BitsToSingle(floatBits);
        Assert.That(BFloat16Bits.FromSingle(x), Is.EqualTo(expected), "scalar");
        var one = new ushort[1];
        BFloat16Bits.FromSingle([x], one);
        Assert.That(one[0], Is.EqualTo(expected), "span (scalar tail)");
        // The same value in every lane of a span long enough for the vector path, with a tail after it.
        var many = Enumerable.Repeat(x, 67).ToArray();
        var got = new ushort[many.Length];
        BFloat16Bits.FromSingle(many, got);
        Assert.That(got, Is.All.EqualTo(expected), "span (vector lanes and tail)");
    }

    [TestCase((ushort)0x0000, 0x0000_0000u)]
    [TestCase((ushort)0x8000, 0x8000_0000u)]
    [TestCase((ushort)0x3F80, 0x3F80_0000u)]
    [TestCase((ushort)0x0001, 0x0001_0000u)]
    [TestCase((ushort)0x7F80, 0x7F80_0000u)]
    [TestCase((ushort)0xFF80, 0xFF80_0000u)]
    [TestCase((ushort)0x7FC1, 0x7FC1_0000u)]
    public void WideningAppendsSixteenZeroBits(ushort bits, uint expected)
    {
        Assert.That(BitConverter.SingleToUInt32Bits(BFloat16Bits.ToSingle(bits)), Is.EqualTo(expected));
    }

    [Test]
    public void WideningEveryPatternThroughTheSpanPath()
    {
        // All 65536 patterns plus a few, so the vector loop and the scalar tail both run.
        var source = Enumerable.Range(0, 65536 + 5).Select(i => (ushort)(i * 40503)).ToArray();
        var got = new float[source.Length];
        BFloat16Bits.ToSingle(source, got);
        for (var i = 0; i < source.Length; i++)
        {
            if (BitConverter.SingleToUInt32Bits(got[i]) != (uint)source[i] << 16)
            {
                Assert.Fail($"pattern 0x{source[i]:X4} widened to 0x{BitConverter.SingleToUInt32Bits(got[i]):X8}");
            }
        }
    }

    [Test]
    public void NarrowingRandomPatternsMatchesADoubleReference()
    {
        var random = new Random(20261123);
        var bits = new uint[100_003];
        random.NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(bits.AsSpan()));
        // Ties and near-ties, which random bits almost never hit.
        for (var i = 0; i < 1000; i++)
        {
            bits[i] = (bits[i] & 0xFFFF_0000) | (uint)(0x7FFF + i % 3);
        }
        var source = bits.Select(BitConverter.UInt32BitsToSingle).ToArray();
        var got = new ushort[source.Length];
        BFloat16Bits.FromSingle(source, got);
        for (var i = 0; i < source.Length; i++)
        {
            var want = Nearest(source[i]);
            if (got[i] != want || BFloat16Bits.FromSingle(source[i]) != want)
            {
                Assert.Fail($"0x{bits[i]:X8}: span gave 0x{got[i]:X4}, scalar 0x{BFloat16Bits.FromSingle(source[i]):X4}, expected 0x{want:X4}");
            }
        }
    }

    /// <summary>
    /// Round to nearest, ties to even, by comparing distances in double to the two bfloat16 values around x
    /// (they are exact in double); NaN only needs to stay NaN here, the edge cases above pin its bits.
    /// </summary>
    private static ushort Nearest(float x)
    {
        if (float.IsNaN(x))
        {
            return (ushort)((BitConverter.SingleToUInt32Bits(x) >> 16) | 0x40);
        }
        var b = BitConverter.SingleToUInt32Bits(x);
        var down = (ushort)(b >> 16);
        if ((b & 0xFFFF) == 0)
        {
            return down;
        }
        var up = (ushort)(down + 1);
        double lo = Math.Abs((double)x - BFloat16Bits.ToSingle(down));
        // The pattern above the largest finite one is infinity: treat it as the next power of two for distances,
        // as IEEE rounding does (overflow threshold halfway to 2^128).
        double upValue = (up & 0x7FFF) == 0x7F80 ? Math.CopySign(Math.Pow(2, 128), x) : BFloat16Bits.ToSingle(up);
        double hi = Math.Abs((double)x - upValue);
        if (lo < hi) return down;
        if (hi < lo) return up;
        return (down & 1) == 0 ? down : up;
    }
}
