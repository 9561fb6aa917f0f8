using NUnit.Framework;
using OnnxAttention.Operators.Simd;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Simd;

[TestFixture]
public unsafe class GemvTests
{
    [TestCase(64, 9, 64)]
    [TestCase(17, 5, 20)]
    [TestCase(1, 3, 1)]
    [TestCase(128, 4, 130)]
    [TestCase(60, 0, 60)]
    public void DotsAndWeightedSumsMatchTheNaiveSums(int d, int count, int stride)
    {
        var q = Seeded.Uniform(d, d);
        var rows = Seeded.Uniform(d + 1, Math.Max(1, count * stride));
        var weights = Seeded.Uniform(d + 2, Math.Max(1, count));
        var scores = new float[Math.Max(1, count)];
        var y0 = Seeded.Uniform(d + 3, d);
        var y = (float[])y0.Clone();
        fixed (float* pq = q, pr = rows, pw = weights, ps = scores, py = y)
        {
            Gemv.Dots(pq, d, pr, stride, count, ps);
            Gemv.WeightedSum(pw, pr, stride, count, d, py, accumulate: true);
        }
        var wantScores = new double[count];
        var wantY = y0.Select(v => (double)v).ToArray();
        for (var j = 0; j < count; j++)
        {
            for (var c = 0; c < d; c++)
            {
                wantScores[j] += (double)q[c] * rows[j * stride + c];
                wantY[c] += (double)weights[j] * rows[j * stride + c];
            }
        }
        TensorAssert.Close(scores.AsSpan(0, count), wantScores, Tolerance.Float32, "dots");
        TensorAssert.Close(y, wantY, Tolerance.Float32, "weighted sum");
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(15)]
    [TestCase(16)]
    [TestCase(33)]
    [TestCase(300)]
    public void ScaledMaximumAndExponentialsMatchTheDefinition(int n)
    {
        var x = Seeded.Uniform(n + 9, n, -8f, 8f);
        var scaled = x.Select(v => 0.5 * v).ToArray();
        var got = (float[])x.Clone();
        float max, sum;
        fixed (float* p = got)
        {
            max = Exponentials.ScaleAndMax(p, n, 0.5f);
            sum = Exponentials.ExpSum(p, n, max);
        }
        Assert.That(max, Is.EqualTo(n == 0 ? float.NegativeInfinity : (float)scaled.Max()));
        var want = scaled.Select(v => Math.Exp(v - (n == 0 ? 0 : scaled.Max()))).ToArray();
        TensorAssert.Close(got, want, Tolerance.Float32, "exponentials");
        Assert.That(sum, Is.EqualTo(want.Sum()).Within(1e-5 * Math.Max(1, want.Sum())));
    }
}
