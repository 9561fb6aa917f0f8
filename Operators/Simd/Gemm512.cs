using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxAttention.Operators.Simd;

/// <summary>
/// The AVX-512 path of <see cref="Gemm.Multiply"/>: C[m,n] += A[m,k] B[k,n] in register tiles of 8 rows by 32
/// columns (16 accumulators; per step of k, two loads of B and eight broadcasts of A feed sixteen FMAs, so the FMA
/// units, not the loads, set the pace). A is packed per panel of 8 rows into [k, 8], so the eight broadcasts of one
/// step read one contiguous 32-byte run instead of eight rows lda apart. Row counts below 8 and 16-column strips are
/// the same generic body with fewer accumulators; columns past the last 16 go to the caller's portable path.
/// </summary>
internal static unsafe class Gemm512
{
    private const int PanelRows = 8;

    /// <summary>Packed A panels of up to this many floats live on the stack.</summary>
    private const int StackPanelLimit = 8 * 512;

    public static bool IsSupported => Vector512.IsHardwareAccelerated;

    /// <summary>C += A·B for columns [0, n - n % 16); returns the first column not done.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static int MultiplyAccumulate(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc)
    {
        var done = n - n % 16;
        if (done == 0 || m == 0 || k == 0)
        {
            return done;
        }
        var panelFloats = PanelRows * k;
        float[]? rented = null;
        var panel = panelFloats <= StackPanelLimit
            ? stackalloc float[panelFloats]
            : (rented = ArrayPool<float>.Shared.Rent(panelFloats)).AsSpan(0, panelFloats);
        try
        {
            fixed (float* packed = panel)
            {
                for (var i0 = 0; i0 < m; i0 += PanelRows)
                {
                    var rows = Math.Min(PanelRows, m - i0);
                    Pack(a + (long)i0 * lda, lda, rows, k, packed);
                    var cPanel = c + (long)i0 * ldc;
                    switch (rows)
                    {
                        case 8: Panel<Eight>(done, k, packed, b, ldb, cPanel, ldc); break;
                        case 7: Panel<Seven>(done, k, packed, b, ldb, cPanel, ldc); break;
                        case 6: Panel<Six>(done, k, packed, b, ldb, cPanel, ldc); break;
                        case 5: Panel<Five>(done, k, packed, b, ldb, cPanel, ldc); break;
                        case 4: Panel<Four>(done, k, packed, b, ldb, cPanel, ldc); break;
                        case 3: Panel<Three>(done, k, packed, b, ldb, cPanel, ldc); break;
                        case 2: Panel<Two>(done, k, packed, b, ldb, cPanel, ldc); break;
                        default: Panel<One>(done, k, packed, b, ldb, cPanel, ldc); break;
                    }
                }
            }
        }
        finally
        {
            if (rented != null)
            {
                ArrayPool<float>.Shared.Return(rented);
            }
        }
        return done;
    }

    /// <summary>packed[p * 8 + i] = a[i * lda + p] for the panel's rows (rows past <paramref name="rows"/> are never read).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Pack(float* a, int lda, int rows, int k, float* packed)
    {
        for (var i = 0; i < rows; i++)
        {
            var row = a + (long)i * lda;
            for (var p = 0; p < k; p++)
            {
                packed[p * PanelRows + i] = row[p];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Panel<R>(int n, int k, float* packed, float* b, int ldb, float* c, int ldc) where R : struct, IConstant
    {
        var j = 0;
        for (; j + 32 <= n; j += 32)
        {
            Tile<R, Yes>(k, packed, b + j, ldb, c + j, ldc);
        }
        if (j < n)
        {
            Tile<R, No>(k, packed, b + j, ldb, c + j, ldc);
        }
    }

    /// <summary>R rows by 32 columns (<typeparamref name="W"/> on) or 16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile<R, W>(int k, float* a, float* b, int ldb, float* c, int ldc) where R : struct, IConstant where W : struct, IFlag
    {
        var rows = R.Value;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
        for (var p = 0; p < k; p++, a += PanelRows, b += ldb)
        {
            var b0 = Vector512.Load(b);
            var b1 = W.On ? Vector512.Load(b + 16) : default;
            var x = Vector512.Create(a[0]);
            c00 = Vector512.FusedMultiplyAdd(x, b0, c00);
            if (W.On) c01 = Vector512.FusedMultiplyAdd(x, b1, c01);
            if (rows > 1) { x = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); if (W.On) c11 = Vector512.FusedMultiplyAdd(x, b1, c11); }
            if (rows > 2) { x = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); if (W.On) c21 = Vector512.FusedMultiplyAdd(x, b1, c21); }
            if (rows > 3) { x = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); if (W.On) c31 = Vector512.FusedMultiplyAdd(x, b1, c31); }
            if (rows > 4) { x = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); if (W.On) c41 = Vector512.FusedMultiplyAdd(x, b1, c41); }
            if (rows > 5) { x = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); if (W.On) c51 = Vector512.FusedMultiplyAdd(x, b1, c51); }
            if (rows > 6) { x = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); if (W.On) c61 = Vector512.FusedMultiplyAdd(x, b1, c61); }
            if (rows > 7) { x = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); if (W.On) c71 = Vector512.FusedMultiplyAdd(x, b1, c71); }
        }
        // Accumulate into C once per tile: C's rows are loaded and stored once, not once per step of k.
        AddRow<W>(c, c00, c01);
        if (rows > 1) AddRow<W>(c + ldc, c10, c11);
        if (rows > 2) AddRow<W>(c + 2 * ldc, c20, c21);
        if (rows > 3) AddRow<W>(c + 3 * ldc, c30, c31);
        if (rows > 4) AddRow<W>(c + 4 * ldc, c40, c41);
        if (rows > 5) AddRow<W>(c + 5 * ldc, c50, c51);
        if (rows > 6) AddRow<W>(c + 6 * ldc, c60, c61);
        if (rows > 7) AddRow<W>(c + 7 * ldc, c70, c71);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddRow<W>(float* c, Vector512<float> lo, Vector512<float> hi) where W : struct, IFlag
    {
        (Vector512.Load(c) + lo).Store(c);
        if (W.On) (Vector512.Load(c + 16) + hi).Store(c + 16);
    }
}
