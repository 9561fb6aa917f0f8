using NUnit.Framework;
using OnnxAttention.Operators.Simd;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Simd;

[TestFixture]
public unsafe class GemmTests
{
    private static double[] Naive(int m, int n, int k, float[] a, bool aT, float[] b, bool bT, float[]? c0)
    {
        var c = new double[m * n];
        for (var i = 0; i < m; i++)
            for (var j = 0; j < n; j++)
            {
                double s = c0?[i * n + j] ?? 0;
                for (var p = 0; p < k; p++) s += (double)(aT ? a[p * m + i] : a[i * k + p]) * (bT ? b[j * k + p] : b[p * n + j]);
                c[i * n + j] = s;
            }
        return c;
    }

    [TestCase(1, 1, 1)]
    [TestCase(4, 16, 8)]
    [TestCase(5, 17, 3)]
    [TestCase(64, 64, 64)]
    [TestCase(65, 60, 128)]
    [TestCase(63, 128, 1)]
    [TestCase(7, 1, 60)]
    [TestCase(8, 32, 5)]
    [TestCase(9, 33, 17)]
    [TestCase(15, 48, 64)]
    [TestCase(16, 47, 2)]
    [TestCase(3, 31, 600)]
    public void AllThreeFormsMatchTheNaiveProduct(int m, int n, int k)
    {
        var a = Seeded.Uniform(m * 31 + n, m * k);
        var b = Seeded.Uniform(k * 17 + 1, k * n);
        var c0 = Seeded.Uniform(5, m * n);
        var scratch = new float[Math.Max(m * k, k * n)];
        fixed (float* pa = a, pb = b, ps = scratch)
        {
            var c = (float[])c0.Clone();
            fixed (float* pc = c) Gemm.Multiply(m, n, k, pa, k, pb, n, pc, n, accumulate: true);
            TensorAssert.Close(c, Naive(m, n, k, a, false, b, false, c0), Tolerance.Float32, "A·B + C");

            var at = new float[k * m];
            for (var i = 0; i < m; i++) for (var p = 0; p < k; p++) at[p * m + i] = a[i * k + p];
            var c2 = new float[m * n];
            fixed (float* pat = at, pc = c2) Gemm.MultiplyTransposedA(m, n, k, pat, m, pb, n, pc, n, accumulate: false, ps);
            TensorAssert.Close(c2, Naive(m, n, k, at, true, b, false, null), Tolerance.Float32, "Aᵀ·B");

            var bt = new float[n * k];
            for (var p = 0; p < k; p++) for (var j = 0; j < n; j++) bt[j * k + p] = b[p * n + j];
            var c3 = new float[m * n];
            fixed (float* pbt = bt, pc = c3) Gemm.MultiplyTransposedB(m, n, k, pa, k, pbt, k, pc, n, accumulate: false, ps);
            TensorAssert.Close(c3, Naive(m, n, k, a, false, bt, true, null), Tolerance.Float32, "A·Bᵀ");
        }
    }
}
