using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.KernelForms;

/// <summary>
/// The chunked (prefill) form of plain linear attention for one (batch, KV head): the sequence is cut into chunks of
/// <see cref="ChunkSize"/> tokens; within a chunk the causal part is a masked matrix product, across chunks the
/// state carries everything before:
/// <code>
///   Y_c = phi(Q_c) S_prev + tril(phi(Q_c) phi(K_c)ᵀ) V_c        den_c = phi(Q_c) z_prev + rowsum(tril(...)) + eps
///   S  += phi(K_c)ᵀ V_c                                           z    += colsum(phi(K_c))
/// </code>
/// Every product is a small dense matrix product (<see cref="Gemm"/>). It gives the recurrence's results up to float
/// rounding (tested), but the operator does not use it: it needs at least the recurrence's 4 d_k d_v flops per token
/// plus the intra-chunk products (twice the flops at d = 64, chunk 64), and the token-block recurrence
/// (<see cref="LinearAttentionTokenBlock"/>) already runs near the FMA units' rate. Measured side by side
/// (bench-ops --forms, T = 256, 1 thread, AVX-512 8x32 GEMM tile at 120-215 GFLOP/s): 2-3x slower than token blocks.
/// Kept outside the operator library; benchmarks and tests run it through <see cref="KernelFormSwitch.Linear"/> =
/// <see cref="LinearForm.Chunked"/>.
/// </summary>
internal static unsafe class LinearAttentionChunked
{
    public const int ChunkSize = 64;

    /// <summary>
    /// The whole sequence of one LinearAttention item in the chunked form (state and normaliser already hold the
    /// past), where the rule allows it (plain linear rule, no decay, more than one token); false leaves it to the operator.
    /// </summary>
    public static bool RunItem(in LinearAttentionCpu.Job a, int b, int kvHead, float* state, float* normalizer)
    {
        if (a.Rule != UpdateRule.Linear || a.Shapes.Gate != GateLayout.None || a.Gamma != 1f || a.Shapes.SequenceLength <= 1)
        {
            return false;
        }
        var s = a.Shapes;
        int dk = s.KeyDim, dv = s.ValueDim, group = a.GroupSize, t = s.SequenceLength;
        var scratch = AllocateScratch(dk, dv);
        try
        {
            Run(new Item
            {
                Query = a.Query + (long)b * t * a.QueryHeads * dk + (long)kvHead * group * dk,
                Key = a.Key + (long)b * t * a.KvHeads * dk + (long)kvHead * dk,
                Value = a.Value + (long)b * t * a.KvHeads * dv + (long)kvHead * dv,
                Output = a.Output + (long)b * t * a.QueryHeads * dv + (long)kvHead * group * dv,
                State = state,
                Normalizer = normalizer,
                QueryStride = (long)a.QueryHeads * dk,
                KeyStride = (long)a.KvHeads * dk,
                ValueStride = (long)a.KvHeads * dv,
                OutputStride = (long)a.QueryHeads * dv,
                Tokens = t,
                KeyDim = dk,
                ValueDim = dv,
                GroupSize = group,
                Map = a.FeatureMap,
                Scale = a.Scale,
                Epsilon = a.Epsilon,
                Normalize = a.Normalize,
            }, scratch);
        }
        finally
        {
            NativeMemory.Free(scratch);
        }
        return true;
    }

    /// <summary>Pointers and strides (in floats) for one (batch, KV head) item; rows are tokens.</summary>
    public struct Item
    {
        public float* Query;     // first q head of the group, token 0
        public float* Key;       // this KV head, token 0
        public float* Value;     // this KV head, token 0
        public float* Output;    // first q head of the group, token 0
        public float* State;     // [dk, dv], holds the past state on entry, the present on exit
        public float* Normalizer;// [dk]
        public long QueryStride, KeyStride, ValueStride, OutputStride;
        public int Tokens, KeyDim, ValueDim, GroupSize;
        public FeatureMap Map;
        public float Scale, Epsilon;
        public bool Normalize;
    }

    /// <summary>Scratch floats one item needs (allocated once per work item by the caller).</summary>
    public static int ScratchFloats(int dk, int dv) =>
        2 * ChunkSize * dk          // phi(K_c), phi(Q_c)
        + ChunkSize * ChunkSize     // scores
        + ChunkSize * Math.Max(dk, dv);   // transpose scratch: [c, dk] of phi(K_c) or [dk, c] of phi(Q_c)

    public static void Run(in Item it, float* scratch)
    {
        int dk = it.KeyDim, dv = it.ValueDim;
        var phiK = scratch;
        var phiQ = phiK + ChunkSize * dk;
        var scores = phiQ + ChunkSize * dk;
        var transpose = scores + ChunkSize * ChunkSize;

        for (var start = 0; start < it.Tokens; start += ChunkSize)
        {
            var c = Math.Min(ChunkSize, it.Tokens - start);
            for (var t = 0; t < c; t++)
            {
                FeatureMaps.Apply(it.Map, new ReadOnlySpan<float>(it.Key + (start + t) * it.KeyStride, dk), 1f, new Span<float>(phiK + t * dk, dk));
            }
            var v = it.Value + start * it.ValueStride;
            for (var g = 0; g < it.GroupSize; g++)
            {
                var y = it.Output + start * it.OutputStride + (long)g * dv;
                for (var t = 0; t < c; t++)
                {
                    FeatureMaps.Apply(it.Map, new ReadOnlySpan<float>(it.Query + (start + t) * it.QueryStride + (long)g * dk, dk), it.Scale, new Span<float>(phiQ + t * dk, dk));
                }
                // Inter-chunk: everything before this chunk, through the state.
                Gemm.Multiply(c, dv, dk, phiQ, dk, it.State, dv, y, (int)it.OutputStride, accumulate: false);
                // Intra-chunk: causal scores within the chunk (diagonal included).
                Gemm.MultiplyTransposedB(c, c, dk, phiQ, dk, phiK, dk, scores, ChunkSize, accumulate: false, transpose);
                for (var i = 0; i < c; i++)
                {
                    new Span<float>(scores + i * ChunkSize + i + 1, c - i - 1).Clear();
                }
                Gemm.Multiply(c, dv, c, scores, ChunkSize, v, (int)it.ValueStride, y, (int)it.OutputStride, accumulate: true);
                if (it.Normalize)
                {
                    var z = new ReadOnlySpan<float>(it.Normalizer, dk);
                    for (var i = 0; i < c; i++)
                    {
                        var den = TensorPrimitives.Dot(new ReadOnlySpan<float>(phiQ + i * dk, dk), z)
                                  + TensorPrimitives.Sum(new ReadOnlySpan<float>(scores + i * ChunkSize, i + 1)) + it.Epsilon;
                        var row = new Span<float>(y + i * it.OutputStride, dv);
                        TensorPrimitives.Divide(row, den, row);
                    }
                }
            }
            // Fold the chunk into the state after every query of the chunk has read the previous one.
            Gemm.MultiplyTransposedA(dk, dv, c, phiK, dk, v, (int)it.ValueStride, it.State, dv, accumulate: true, transpose);
            var nu = new Span<float>(it.Normalizer, dk);
            for (var t = 0; t < c; t++)
            {
                TensorPrimitives.Add(nu, new ReadOnlySpan<float>(phiK + t * dk, dk), nu);
            }
        }
    }

    /// <summary>Scratch for one work item: native, so it never moves and costs no GC.</summary>
    public static float* AllocateScratch(int dk, int dv) => (float*)NativeMemory.Alloc((nuint)ScratchFloats(dk, dv), sizeof(float));
}
