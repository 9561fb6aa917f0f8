using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxAttention.Operators.Simd;

/// <summary>
/// Small dense matrix products for the chunked kernels (chunk x head-dim sized, so they live in L1/L2):
/// C[m,n] (+)= A[m,k] B[k,n], all row-major with leading dimensions. An 8x32 AVX-512 register tile over packed A
/// where the processor has it (<see cref="Gemm512"/>), else a 4x16 AVX2 FMA tile (8 accumulators, each element of B
/// loaded once per 4 rows); portable Vector&lt;T&gt; otherwise.
/// </summary>
public static unsafe class Gemm
{
    /// <summary>C = A·B (accumulate: C += A·B).</summary>
    public static void Multiply(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        if (!accumulate)
        {
            for (var i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
        }
        if (m == 0 || n == 0 || k == 0) return;
        if (Gemm512.IsSupported)
        {
            var done = Gemm512.MultiplyAccumulate(m, n, k, a, lda, b, ldb, c, ldc);
            if (done < n) Rows(0, m, done, n, k, a, lda, b, ldb, c, ldc);
            return;
        }
        var i0 = 0;
        if (Fma.IsSupported && Avx.IsSupported)
        {
            for (; i0 + 4 <= m; i0 += 4)
            {
                var j = 0;
                for (; j + 16 <= n; j += 16) Tile4x16(k, a + (long)i0 * lda, lda, b + j, ldb, c + (long)i0 * ldc + j, ldc);
                if (j < n) Rows(i0, 4, j, n, k, a, lda, b, ldb, c, ldc);
            }
        }
        if (i0 < m) Rows(i0, m - i0, 0, n, k, a, lda, b, ldb, c, ldc);
    }

    /// <summary>C = Aᵀ·B with A stored [k, m] (accumulate: C += Aᵀ·B). Transposes A into scratch first.</summary>
    public static void MultiplyTransposedA(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, float* scratch)
    {
        for (var p = 0; p < k; p++)
            for (var i = 0; i < m; i++)
                scratch[(long)i * k + p] = a[(long)p * lda + i];
        Multiply(m, n, k, scratch, k, b, ldb, c, ldc, accumulate);
    }

    /// <summary>C = A·Bᵀ with B stored [n, k] (accumulate: C += A·Bᵀ). Transposes B into scratch first.</summary>
    public static void MultiplyTransposedB(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, float* scratch)
    {
        for (var j = 0; j < n; j++)
            for (var p = 0; p < k; p++)
                scratch[(long)p * n + j] = b[(long)j * ldb + p];
        Multiply(m, n, k, a, lda, scratch, n, c, ldc, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile4x16(int k, float* a, int lda, float* b, int ldb, float* c, int ldc)
    {
        var c00 = Avx.LoadVector256(c);
        var c01 = Avx.LoadVector256(c + 8);
        var c10 = Avx.LoadVector256(c + ldc);
        var c11 = Avx.LoadVector256(c + ldc + 8);
        var c20 = Avx.LoadVector256(c + 2 * ldc);
        var c21 = Avx.LoadVector256(c + 2 * ldc + 8);
        var c30 = Avx.LoadVector256(c + 3 * ldc);
        var c31 = Avx.LoadVector256(c + 3 * ldc + 8);
        for (var p = 0; p < k; p++)
        {
            var b0 = Avx.LoadVector256(b + (long)p * ldb);
            var b1 = Avx.LoadVector256(b + (long)p * ldb + 8);
            var a0 = Vector256.Create(a[p]);
            var a1 = Vector256.Create(a[lda + p]);
            var a2 = Vector256.Create(a[2 * lda + p]);
            var a3 = Vector256.Create(a[3 * lda + p]);
            c00 = Fma.MultiplyAdd(a0, b0, c00);
            c01 = Fma.MultiplyAdd(a0, b1, c01);
            c10 = Fma.MultiplyAdd(a1, b0, c10);
            c11 = Fma.MultiplyAdd(a1, b1, c11);
            c20 = Fma.MultiplyAdd(a2, b0, c20);
            c21 = Fma.MultiplyAdd(a2, b1, c21);
            c30 = Fma.MultiplyAdd(a3, b0, c30);
            c31 = Fma.MultiplyAdd(a3, b1, c31);
        }
        Avx.Store(c, c00);
        Avx.Store(c + 8, c01);
        Avx.Store(c + ldc, c10);
        Avx.Store(c + ldc + 8, c11);
        Avx.Store(c + 2 * ldc, c20);
        Avx.Store(c + 2 * ldc + 8, c21);
        Avx.Store(c + 3 * ldc, c30);
        Avx.Store(c + 3 * ldc + 8, c31);
    }

    /// <summary>Rows [i0, i0+rows) and columns [j0, n): one row at a time with portable vectors.</summary>
    private static void Rows(int i0, int rows, int j0, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc)
    {
        var width = n - j0;
        for (var i = i0; i < i0 + rows; i++)
        {
            var cRow = new Span<float>(c + (long)i * ldc + j0, width);
            for (var p = 0; p < k; p++)
            {
                var s = a[(long)i * lda + p];
                if (s == 0f) continue;
                System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(new ReadOnlySpan<float>(b + (long)p * ldb + j0, width), s, cRow, cRow);
            }
        }
    }
}
