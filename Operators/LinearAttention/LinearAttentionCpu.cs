using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>
/// The float32 CPU recurrence. Work is split by (batch, KV head): each item owns its slice of the state, so the
/// items never write the same memory and need no locks. Query heads of one group share their KV head's state
/// and are read out in the same item. Each token sweeps the state at most twice, one row (key dimension) at a
/// time: once to decay it and retrieve S^T phi(k) (only when the rule decays or corrects), once to write and read
/// out, so a row is still in L1 when the next operation on it runs.
/// </summary>
internal static unsafe class LinearAttentionCpu
{
    /// <summary>Scratch of up to this many floats lives on the stack; larger heads rent once per work item.</summary>
    private const int StackScratchLimit = 4096;

    public struct Job
    {
        // Copied out of the attributes record: the job is reached through a pointer, so it must be unmanaged.
        public int QueryHeads, KvHeads;
        public FeatureMap FeatureMap;
        public UpdateRule Rule;
        public bool Normalize;
        /// <summary>The resolved query scale (never the attribute's 0).</summary>
        public float Epsilon, Scale;
        /// <summary>The fixed decay factor gamma (attribute <c>decay</c>).</summary>
        public float Gamma;
        public LinearAttentionShapes Shapes;

        public readonly int GroupSize => QueryHeads / KvHeads;
        public float* Query, Key, Value, Decay, Beta, PastState, PastNormalizer;
        public float* Output, State, Normalizer;
    }

    public static void Run(in KernelContext context, ref Job job)
    {
        var items = (nint)job.Shapes.Batch * job.KvHeads;
        fixed (Job* p = &job)
        {
            OrtParallel.For(context, items, p, &RunItem);
        }
    }

    private static void RunItem(void* state, nint item)
    {
        var job = (Job*)state;
        ref readonly var a = ref *job;
        var s = a.Shapes;
        int dk = s.KeyDim, dv = s.ValueDim, t = s.SequenceLength, group = a.GroupSize;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);

        var stateOffset = ((long)b * a.KvHeads + kvHead) * dk * dv;
        var normOffset = ((long)b * a.KvHeads + kvHead) * dk;
        var S = new Span<float>(a.State + stateOffset, dk * dv);
        var nu = new Span<float>(a.Normalizer + normOffset, dk);
        if (a.PastState != null)
        {
            new ReadOnlySpan<float>(a.PastState + stateOffset, dk * dv).CopyTo(S);
        }
        else
        {
            S.Clear();
        }
        if (a.PastNormalizer != null)
        {
            new ReadOnlySpan<float>(a.PastNormalizer + normOffset, dk).CopyTo(nu);
        }
        else
        {
            nu.Clear();
        }

        var scratchLength = (2 + group) * dk + dv;
        float[]? rented = null;
        var scratch = scratchLength <= StackScratchLimit
            ? stackalloc float[scratchLength]
            : (rented = ArrayPool<float>.Shared.Rent(scratchLength)).AsSpan(0, scratchLength);
        try
        {
            var phiK = scratch[..dk];
            var gate = scratch.Slice(dk, dk);
            var phiQ = scratch.Slice(2 * dk, group * dk);
            var u = scratch.Slice((2 + group) * dk, dv);

            var delta = UpdateRules.IsDelta(a.Rule);
            var qStride = (long)a.QueryHeads * dk;
            var kStride = (long)a.KvHeads * dk;
            var vStride = (long)a.KvHeads * dv;
            var yStride = (long)a.QueryHeads * dv;
            for (var i = 0; i < t; i++)
            {
                var row = (long)b * t + i;
                var k = new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk);
                var v = new ReadOnlySpan<float>(a.Value + row * vStride + (long)kvHead * dv, dv);
                var q = new ReadOnlySpan<float>(a.Query + row * qStride + (long)kvHead * group * dk, group * dk);
                var y = new Span<float>(a.Output + row * yStride + (long)kvHead * group * dv, group * dv);

                // Keys are never scaled: scale belongs to the query, as in softmax attention's q.k * scale.
                FeatureMaps.Apply(a.FeatureMap, k, 1f, phiK);
                for (var g = 0; g < group; g++)
                {
                    FeatureMaps.Apply(a.FeatureMap, q.Slice(g * dk, dk), a.Scale, phiQ.Slice(g * dk, dk));
                }

                // The multiplier this token applies to the state: gamma, times exp(g) per head or per key row.
                var factor = a.Gamma;
                var perKey = s.Gate == GateLayout.PerKey;
                if (s.Gate == GateLayout.PerHead)
                {
                    factor *= MathF.Exp(a.Decay[row * a.KvHeads + kvHead]);
                }
                else if (perKey)
                {
                    TensorPrimitives.Exp(new ReadOnlySpan<float>(a.Decay + row * kStride + (long)kvHead * dk, dk), gate);
                    TensorPrimitives.Multiply(gate, factor, gate);
                }
                var decays = perKey || factor != 1f;

                if (decays || delta)
                {
                    // First sweep: decay each row, and for the delta rules accumulate r = S'^T phi(k) into u.
                    if (delta)
                    {
                        u.Clear();
                    }
                    for (var r = 0; r < dk; r++)
                    {
                        var sRow = S.Slice(r * dv, dv);
                        if (decays)
                        {
                            TensorPrimitives.Multiply(sRow, perKey ? gate[r] : factor, sRow);
                        }
                        if (delta)
                        {
                            TensorPrimitives.MultiplyAdd(sRow, phiK[r], u, u);
                        }
                    }
                    if (perKey)
                    {
                        TensorPrimitives.Multiply(nu, gate, nu);
                    }
                    else if (decays)
                    {
                        TensorPrimitives.Multiply(nu, factor, nu);
                    }
                }

                if (delta)
                {
                    var beta = a.Beta[s.Beta == BetaLayout.Shared ? row : row * a.KvHeads + kvHead];
                    // u = beta (v - r); nu is S's column for an implicit value that is always 1, so it gets the same correction.
                    TensorPrimitives.Subtract(v, u, u);
                    TensorPrimitives.Multiply(u, beta, u);
                    var correction = beta * (1f - TensorPrimitives.Dot(phiK, nu));
                    TensorPrimitives.MultiplyAdd(phiK, correction, nu, nu);
                }
                else
                {
                    TensorPrimitives.Add(nu, phiK, nu);
                }
                ReadOnlySpan<float> write = delta ? u : v;

                // Second sweep: write phi(k) (x) write into each row, then read the updated row out for every query head of the group.
                y.Clear();
                for (var r = 0; r < dk; r++)
                {
                    var sRow = S.Slice(r * dv, dv);
                    TensorPrimitives.MultiplyAdd(write, phiK[r], sRow, sRow);
                    for (var g = 0; g < group; g++)
                    {
                        var yHead = y.Slice(g * dv, dv);
                        TensorPrimitives.MultiplyAdd(sRow, phiQ[g * dk + r], yHead, yHead);
                    }
                }
                if (a.Normalize)
                {
                    for (var g = 0; g < group; g++)
                    {
                        var denominator = TensorPrimitives.Dot(phiQ.Slice(g * dk, dk), nu) + a.Epsilon;
                        var yHead = y.Slice(g * dv, dv);
                        TensorPrimitives.Divide(yHead, denominator, yHead);
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
    }
}
