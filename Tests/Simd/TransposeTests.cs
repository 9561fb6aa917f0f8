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
    public void RowsBecomeColumns(int rows, int columns)
    {
        var source = Seeded.Uniform(rows * 10 + columns, rows * columns);
        var destination = new float[rows * columns];
        fixed (float* s = source, d = destination) Transpose.Rows(s, rows, columns, d);
        for (var r = 0; r < rows; r++)
        for (var c = 0; c < columns; c++)
            Assert.That(destination[c * rows + r], Is.EqualTo(source[r * columns + c]), $"[{r}, {c}]");
    }
}
