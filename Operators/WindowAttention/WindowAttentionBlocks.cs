using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>
/// Prefill by blocks of <see cref="BlockTokens"/> queries for one (batch, KV head): the keys any query of the block
/// may see (the sinks below the block's first window, then every position from that window's start to the block's
/// last token) are laid out once as columns of Kᵀ, each query head's scores for the whole block are one matrix
/// product (<see cref="Gemm"/>), each row is masked to its own window and sinks and softmaxed, and the outputs are
/// one more product with the values, read where they lie: the cache's sink and ring rows for positions before this
/// call, the value input for this call's tokens. Then the block's tokens go into the cache, as token-by-token
/// processing would have left it. Keys of earlier positions are read before any later token overwrites their ring
/// row: a block reads positions after its first query's window start, and the blocks before it only overwrote rows
/// of positions before that.
/// <para>
/// A row attends to the same set as <see cref="WindowAttentionCpu"/>'s per-token loop; only summation orders differ.
/// The block spends work on the (block - 1) positions a row cannot see, so it pays off for windows well above the
/// block length, where it turns 2W span calls per token and head into two matrix products per block and head.
/// </para>
/// </summary>
internal static unsafe class WindowAttentionBlocks
{
    public const int BlockTokens = 64;

    /// <summary>
    /// The shortest call, and the fewest keys its last query sees, that the blocks take by default. Measured side by
    /// side (bench-ops --forms --phase window, B1 H16 d64, 2 cores): blocks 1.2-1.3x faster than the per-token loop
    /// from about 512 keys per query at T >= 256, 10-20% slower at 128 keys or at T = 64.
    /// </summary>
    public const int MinTokens = 128, MinKeys = 256;

    /// <summary>Key columns per score product, so that a product's slice of Kᵀ (d_k x 512) stays in L2 across its row panels.</summary>
    private const int ColumnChunk = 512;

    /// <param name="past">the tokens this batch row saw before the call</param>
    public static bool Applies(in WindowAttentionCpu.Job a, long past) => a.Prefill switch
    {
        WindowPrefill.PerToken => false,
        WindowPrefill.Blocks => a.Shapes.SequenceLength > 1,
        _ => a.Shapes.SequenceLength >= MinTokens && Math.Min(a.Window, past + a.Shapes.SequenceLength) >= MinKeys,
    };

    /// <summary>A run of consecutive positions whose key and value rows lie a fixed stride apart.</summary>
    private struct Segment
    {
        public int Column, Count;
        public float* Key, Value;
        public long KeyStride, ValueStride;
    }

    /// <param name="beforeWrite">called per block, with <paramref name="hookState"/>, the block's first call token and its
    /// length, after the block's outputs are written and before its tokens go into the cache (HybridAttention folds the
    /// tokens leaving the window there, while their rows still hold them); null for none</param>
    public static void Run(in WindowAttentionCpu.Job a, int b, int kvHead, delegate*<void*, int, int, void> beforeWrite = null, void* hookState = null)
    {
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, w = a.Window, sinks = a.Sinks, rows = sinks + w, group = a.GroupSize;
        var head = (long)b * a.KvHeads + kvHead;
        var keyCache = a.KeyCache + head * rows * dk;
        var valueCache = a.ValueCache + head * rows * dv;
        var past = a.PastPosition[b];
        long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv, yStride = (long)a.QueryHeads * dv;

        // Columns: at most every sink, plus the first query's window and the block's other tokens.
        var maxColumns = (int)Math.Min((long)sinks + w + BlockTokens - 1, (long)sinks + past + t);
        var keysT = (float*)NativeMemory.Alloc((nuint)((long)dk * maxColumns), sizeof(float));
        var scores = (float*)NativeMemory.Alloc((nuint)((long)BlockTokens * maxColumns), sizeof(float));
        var segments = stackalloc Segment[4];
        var inverse = stackalloc float[BlockTokens];
        try
        {
            for (var i0 = 0; i0 < t; i0 += BlockTokens)
            {
                var m = Math.Min(BlockTokens, t - i0);
                long first = past + i0, end = past + i0 + m;
                var lo = Math.Max(0, first - w + 1);
                // Sinks some query of the block attends as sinks (below its window) and that lie below lo.
                var sinkColumns = (int)Math.Min(Math.Clamp(end - w, 0, sinks), lo);
                var columns = sinkColumns + (int)(end - lo);
                var count = Gather(a, b, kvHead, keyCache, valueCache, past, lo, end, sinkColumns, kStride, vStride, segments);
                for (var s = 0; s < count; s++)
                {
                    var seg = segments[s];
                    Transpose.Rows(seg.Key, seg.KeyStride, seg.Count, dk, keysT + seg.Column, columns);
                }

                for (var g = 0; g < group; g++)
                {
                    var qHead = kvHead * group + g;
                    var q = a.Query + ((long)b * t + i0) * qStride + (long)qHead * dk;
                    var y = a.Output + ((long)b * t + i0) * yStride + (long)qHead * dv;
                    for (var j0 = 0; j0 < columns; j0 += ColumnChunk)
                    {
                        Gemm.Multiply(m, Math.Min(ColumnChunk, columns - j0), dk, q, (int)qStride, keysT + j0, columns, scores + j0, columns, accumulate: false);
                    }
                    for (var r = 0; r < m; r++)
                    {
                        inverse[r] = 1f / MaskedSoftmax(a, new Span<float>(scores + (long)r * columns, columns), first + r, lo, sinkColumns);
                    }
                    var accumulate = false;
                    for (var s = 0; s < count; s++)
                    {
                        var seg = segments[s];
                        for (var k0 = 0; k0 < seg.Count; k0 += ColumnChunk)
                        {
                            Gemm.Multiply(m, dv, Math.Min(ColumnChunk, seg.Count - k0), scores + seg.Column + k0, columns,
                                seg.Value + k0 * seg.ValueStride, (int)seg.ValueStride, y, (int)yStride, accumulate);
                            accumulate = true;
                        }
                    }
                    for (var r = 0; r < m; r++)
                    {
                        var yRow = new Span<float>(y + r * yStride, dv);
                        TensorPrimitives.Multiply(yRow, inverse[r], yRow);
                    }
                }

                if (beforeWrite != null)
                {
                    beforeWrite(hookState, i0, m);
                }
                for (var i = i0; i < i0 + m; i++)
                {
                    var row = (long)b * t + i;
                    WindowAttentionCpu.WriteToken(a, keyCache, valueCache, a.Key + row * kStride + (long)kvHead * dk,
                        a.Value + row * vStride + (long)kvHead * dv, past + i);
                }
            }
        }
        finally
        {
            NativeMemory.Free(keysT);
            NativeMemory.Free(scores);
        }
    }

    /// <summary>
    /// The block's columns as runs of rows: sinks [0, sinkColumns) from the cache's sink rows, then positions
    /// [lo, end): before this call from the ring (split where it wraps), from this call from the inputs.
    /// </summary>
    private static int Gather(in WindowAttentionCpu.Job a, int b, int kvHead, float* keyCache, float* valueCache, long past,
        long lo, long end, int sinkColumns, long kStride, long vStride, Segment* segments)
    {
        int dk = a.Shapes.KeyDim, dv = a.Shapes.ValueDim, w = a.Window, sinks = a.Sinks, t = a.Shapes.SequenceLength;
        var n = 0;
        var column = 0;
        if (sinkColumns > 0)
        {
            segments[n++] = new Segment { Column = 0, Count = sinkColumns, Key = keyCache, Value = valueCache, KeyStride = dk, ValueStride = dv };
            column = sinkColumns;
        }
        var p = lo;
        var oldEnd = Math.Min(past, end);
        while (p < oldEnd)
        {
            var ring = (int)(p % w);
            var run = (int)Math.Min(oldEnd - p, w - ring);
            segments[n++] = new Segment
            {
                Column = column,
                Count = run,
                Key = keyCache + (long)(sinks + ring) * dk,
                Value = valueCache + (long)(sinks + ring) * dv,
                KeyStride = dk,
                ValueStride = dv,
            };
            column += run;
            p += run;
        }
        if (p < end)
        {
            var row = (long)b * t + (p - past);
            segments[n++] = new Segment
            {
                Column = column,
                Count = (int)(end - p),
                Key = a.Key + row * kStride + (long)kvHead * dk,
                Value = a.Value + row * vStride + (long)kvHead * dv,
                KeyStride = kStride,
                ValueStride = vStride,
            };
        }
        return n;
    }

    /// <summary>
    /// One query's row of scores over the block's columns: capped, softmaxed over the columns its query at
    /// <paramref name="position"/> attends (every gathered sink; of positions lo.., the sinks below its window and its
    /// window up to itself), 0 elsewhere. Returns the sum of the exponentials.
    /// </summary>
    private static float MaskedSoftmax(in WindowAttentionCpu.Job a, Span<float> row, long position, long lo, int sinkColumns)
    {
        var windowStart = Math.Max(lo, position - a.Window + 1);
        // Columns [0, sinksEnd) and [windowBegin, windowEnd) are attended.
        var sinksEnd = sinkColumns + (int)Math.Clamp(Math.Min(a.Sinks, windowStart) - lo, 0, windowStart - lo);
        var windowBegin = sinkColumns + (int)(windowStart - lo);
        var windowEnd = sinkColumns + (int)(position - lo) + 1;
        var head = row[..sinksEnd];
        var window = row[windowBegin..windowEnd];
        var max = Math.Max(WindowAttentionCpu.CapAndMax(head, a.Scale, a.Softcap), WindowAttentionCpu.CapAndMax(window, a.Scale, a.Softcap));
        row[sinksEnd..windowBegin].Clear();
        row[windowEnd..].Clear();
        fixed (float* x = row)
        {
            return Exponentials.ExpSum(x, sinksEnd, max) + Exponentials.ExpSum(x + windowBegin, windowEnd - windowBegin, max);
        }
    }
}
