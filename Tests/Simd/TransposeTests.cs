using NUnit.Framework;
using OnnxAttention.Operators.Simd;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Simd;

[TestFixture]
public unsafe class TransposeTests
{
    [TestCase(4, 4)]
    [TestCase(4, 1)]
    [TestCase(8, 65)]
    [TestCase(16, 7)]
    [TestCase(3, 9)]
    [TestCase(1, 1)]
    [TestCase(7, 6)]
    [TestCase(13, 5)]
    public void RowsBecomeColumns(int rows, int columns)
    {
        var source = Seeded.Uniform(rows * 10 + columns, rows * columns);
        var destination = new float[rows * columns];
        fixed (float* s = source, d = destination) Transpose.Rows(s, rows, columns, d);
        for (var r = 0; r < rows; r++)
            for (var c = 0; c < columns; c++)
                Assert.That(destination[c * rows + r], Is.EqualTo(source[r * columns + c]), $"[{r}, {c}]");
    }

    [TestCase(9, 5, 7, 11)]
    [TestCase(8, 8, 8, 8)]
    [TestCase(3, 2, 4, 3)]
    public void StridedRowsBecomeStridedColumns(int rows, int columns, int sourceStride, int destinationStride)
    {
        var source = Seeded.Uniform(rows + columns, rows * sourceStride);
        var destination = Enumerable.Repeat(-7f, columns * destinationStride).ToArray();
        fixed (float* s = source, d = destination) Transpose.Rows(s, sourceStride, rows, columns, d, destinationStride);
        for (var c = 0; c < columns; c++)
            for (var r = 0; r < destinationStride; r++)
                Assert.That(destination[c * destinationStride + r], Is.EqualTo(r < rows ? source[r * sourceStride + c] : -7f), $"[{r}, {c}]");
    }
}
