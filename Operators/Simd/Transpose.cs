using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace OnnxAttention.Operators.Simd;

/// <summary>Small matrix transposes for packing kernel operands.</summary>
internal static unsafe class Transpose
{
    /// <summary>
    /// destination[c * rows + r] = source[r * columns + c]: a [rows, columns] row-major matrix into [columns, rows].
    /// Four rows by four columns at a time with SSE shuffles where <paramref name="rows"/> is a multiple of 4.
    /// </summary>
    public static void Rows(float* source, int rows, int columns, float* destination)
    {
        var c0 = 0;
        if (Sse.IsSupported && rows % 4 == 0)
        {
            for (; c0 + 4 <= columns; c0 += 4)
            {
                for (var r = 0; r < rows; r += 4)
                {
                    var p = source + (long)r * columns + c0;
                    var a0 = Sse.LoadVector128(p);
                    var a1 = Sse.LoadVector128(p + columns);
                    var a2 = Sse.LoadVector128(p + 2 * columns);
                    var a3 = Sse.LoadVector128(p + 3 * columns);
                    var t0 = Sse.UnpackLow(a0, a1);   // a0[0] a1[0] a0[1] a1[1]
                    var t1 = Sse.UnpackLow(a2, a3);   // a2[0] a3[0] a2[1] a3[1]
                    var t2 = Sse.UnpackHigh(a0, a1);  // a0[2] a1[2] a0[3] a1[3]
                    var t3 = Sse.UnpackHigh(a2, a3);  // a2[2] a3[2] a2[3] a3[3]
                    var d = destination + (long)c0 * rows + r;
                    Sse.Store(d, Sse.MoveLowToHigh(t0, t1));
                    Sse.Store(d + rows, Sse.MoveHighToLow(t1, t0));
                    Sse.Store(d + 2 * rows, Sse.MoveLowToHigh(t2, t3));
                    Sse.Store(d + 3 * rows, Sse.MoveHighToLow(t3, t2));
                }
            }
        }
        for (var c = c0; c < columns; c++)
        {
            for (var r = 0; r < rows; r++)
            {
                destination[(long)c * rows + r] = source[(long)r * columns + c];
            }
        }
    }
}
