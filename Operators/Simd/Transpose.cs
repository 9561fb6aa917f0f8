using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxAttention.Operators.Simd;

/// <summary>Small matrix transposes for packing kernel operands.</summary>
internal static unsafe class Transpose
{
    /// <summary>
    /// destination[c * rows + r] = source[r * columns + c]: a [rows, columns] row-major matrix into [columns, rows].
    /// Four rows by four columns at a time with SSE shuffles.
    /// </summary>
    public static void Rows(float* source, int rows, int columns, float* destination) =>
        Rows(source, columns, rows, columns, destination, rows);

    /// <summary>
    /// destination[c * destinationStride + r] = source[r * sourceStride + c] for r in [0, rows), c in [0, columns):
    /// rows lying <paramref name="sourceStride"/> floats apart become columns of a matrix with rows
    /// <paramref name="destinationStride"/> floats apart.
    /// </summary>
    public static void Rows(float* source, long sourceStride, int rows, int columns, float* destination, long destinationStride)
    {
        var r0 = rows - rows % 4;
        var c0 = 0;
        if (Sse.IsSupported && r0 > 0)
        {
            for (; c0 + 4 <= columns; c0 += 4)
            {
                for (var r = 0; r < r0; r += 4)
                {
                    var p = source + r * sourceStride + c0;
                    var a0 = Sse.LoadVector128(p);
                    var a1 = Sse.LoadVector128(p + sourceStride);
                    var a2 = Sse.LoadVector128(p + 2 * sourceStride);
                    var a3 = Sse.LoadVector128(p + 3 * sourceStride);
                    var t0 = Sse.UnpackLow(a0, a1);   // a0[0] a1[0] a0[1] a1[1]
                    var t1 = Sse.UnpackLow(a2, a3);   // a2[0] a3[0] a2[1] a3[1]
                    var t2 = Sse.UnpackHigh(a0, a1);  // a0[2] a1[2] a0[3] a1[3]
                    var t3 = Sse.UnpackHigh(a2, a3);  // a2[2] a3[2] a2[3] a3[3]
                    var d = destination + c0 * destinationStride + r;
                    Sse.Store(d, Sse.MoveLowToHigh(t0, t1));
                    Sse.Store(d + destinationStride, Sse.MoveHighToLow(t1, t0));
                    Sse.Store(d + 2 * destinationStride, Sse.MoveLowToHigh(t2, t3));
                    Sse.Store(d + 3 * destinationStride, Sse.MoveHighToLow(t3, t2));
                }
            }
        }
        else
        {
            r0 = 0;
        }
        // What the 4x4 blocks left: the last columns of the block rows, then the last rows whole.
        for (var c = c0; c < columns; c++)
        {
            for (var r = 0; r < r0; r++)
            {
                destination[c * destinationStride + r] = source[r * sourceStride + c];
            }
        }
        for (var r = r0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                destination[c * destinationStride + r] = source[r * sourceStride + c];
            }
        }
    }
}
