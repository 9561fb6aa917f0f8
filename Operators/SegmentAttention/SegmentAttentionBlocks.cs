using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.SegmentAttention;

/// <summary>
/// Prefill by blocks of up to <see cref="BlockTokens"/> queries for one (batch, KV head), each block inside one
/// segment. The block's tokens go into the own segment's rows first: inside a segment no row is overwritten, so the
/// keys any query of the block may see are then two contiguous runs of rows, the memory (the previous segment, once
/// there is one) and the own segment up to the block's last token. They are laid out once as columns of Kᵀ, each
/// query head's scores for the block are one matrix product (<see cref="Gemm"/>), each row is masked to its own
/// causal prefix and softmaxed, and the outputs are two more products with the memory's and the segment's values.
/// <para>
/// A row attends to the same set as the per-token loop; only summation orders differ. Masked columns get weight 0,
/// so a non-finite value in a later token of the same block would reach earlier rows as NaN, where the per-token loop
/// would not read it; finite inputs give the same results.
/// </para>
/// </summary>
internal static unsafe class SegmentAttentionBlocks
{
    public const int BlockTokens = 64;

    /// <summary>
    /// The shortest call the blocks take by default. Measured side by side (bench-ops --forms --phase recurrent, L=512,
    /// 2 shared cores): at T=64 the blocks were about 10% faster than the tuned per-token loop, at T=256 1.3-1.9x;
    /// shorter calls were not measured, so they stay with the loop.
    /// </summary>
    public const int MinTokens = 64;

    /// <summary>Longest segment the blocks take: their scratch is (head_dim + block) x 2L floats per item.</summary>
    public const int MaxSegmentLength = 8192;

    /// <summary>Key columns per score product, so that a product's slice of Kᵀ stays in L2 across its row panels.</summary>
    private const int ColumnChunk = 512;

    public static bool Applies(in SegmentAttentionCpu.Job a) => a.SegmentLength <= MaxSegmentLength && a.Form switch
    {
        RecurrentKernel.PerToken => false,
        RecurrentKernel.Blocks => a.Shapes.SequenceLength > 1,
        _ => a.Shapes.SequenceLength >= MinTokens,
    };

    /// <summary>Runs the call's tokens; the rows past the past state's fill are already cleared.</summary>
    public static void Run(in SegmentAttentionCpu.Job a, int b, int kvHead, float* memoryKey, float* memoryValue, float* segmentKey, float* segmentValue)
    {
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, l = a.SegmentLength, group = a.GroupSize;
        var past = a.PastPosition[b];
        long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv, yStride = (long)a.QueryHeads * dv;

        var last = past + t - 1;
        var maxColumns = (last >= l ? l : 0) + (int)Math.Min(l, last + 1);
        var keysT = (float*)NativeMemory.Alloc((nuint)((long)dk * maxColumns), sizeof(float));
        var scores = (float*)NativeMemory.Alloc((nuint)((long)BlockTokens * maxColumns), sizeof(float));
        var inverse = stackalloc float[BlockTokens];
        try
        {
            var i0 = 0;
            while (i0 < t)
            {
                var first = past + i0;
                var offset = (int)(first % l);
                var m = Math.Min(BlockTokens, Math.Min(t - i0, l - offset));
                for (var r = 0; r < m; r++)
                {
                    var row = (long)b * t + i0 + r;
                    new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk).CopyTo(new Span<float>(segmentKey + (long)(offset + r) * dk, dk));
                    new ReadOnlySpan<float>(a.Value + row * vStride + (long)kvHead * dv, dv).CopyTo(new Span<float>(segmentValue + (long)(offset + r) * dv, dv));
                }
                var memoryRows = first >= l ? l : 0;
                var segmentRows = offset + m;
                var columns = memoryRows + segmentRows;
                Transpose.Rows(memoryKey, dk, memoryRows, dk, keysT, columns);
                Transpose.Rows(segmentKey, dk, segmentRows, dk, keysT + memoryRows, columns);

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
                        // Row r sees the memory and its own segment up to itself.
                        var scoreRow = scores + (long)r * columns;
                        var visible = memoryRows + offset + r + 1;
                        var max = Exponentials.ScaleAndMax(scoreRow, visible, a.Scale);
                        inverse[r] = 1f / Exponentials.ExpSum(scoreRow, visible, max);
                        new Span<float>(scoreRow + visible, columns - visible).Clear();
                    }
                    var accumulate = false;
                    for (var k0 = 0; k0 < memoryRows; k0 += ColumnChunk)
                    {
                        Gemm.Multiply(m, dv, Math.Min(ColumnChunk, memoryRows - k0), scores + k0, columns, memoryValue + (long)k0 * dv, dv, y, (int)yStride, accumulate);
                        accumulate = true;
                    }
                    for (var k0 = 0; k0 < segmentRows; k0 += ColumnChunk)
                    {
                        Gemm.Multiply(m, dv, Math.Min(ColumnChunk, segmentRows - k0), scores + memoryRows + k0, columns, segmentValue + (long)k0 * dv, dv, y, (int)yStride, accumulate);
                        accumulate = true;
                    }
                    for (var r = 0; r < m; r++)
                    {
                        var yRow = new Span<float>(y + r * yStride, dv);
                        TensorPrimitives.Multiply(yRow, inverse[r], yRow);
                    }
                }

                if (offset + m == l)
                {
                    // The segment is full: it becomes the memory and the next token starts an empty segment.
                    SegmentAttentionCpu.Rotate(memoryKey, memoryValue, segmentKey, segmentValue, l * dk, l * dv);
                }
                i0 += m;
            }
        }
        finally
        {
            NativeMemory.Free(keysT);
            NativeMemory.Free(scores);
        }
    }
}
