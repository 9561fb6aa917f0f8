using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>
/// The float32 CPU recurrence. Work is split by (batch, KV head): each item owns its slice of the state, so the
/// items never write the same memory and need no locks. Query heads of one group share their KV head's state
/// and are read out in the same item. Each token sweeps the state once (decay, write and read-out fused), or twice
/// for the delta rules, whose write needs the retrieval S'^T phi(k) from the whole decayed state first.
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
        var matrix = new Span<float>(a.State + stateOffset, dk * dv);
        var nu = new Span<float>(a.Normalizer + normOffset, dk);
        if (a.PastState != null)
        {
            new ReadOnlySpan<float>(a.PastState + stateOffset, dk * dv).CopyTo(matrix);
        }
        else
        {
            matrix.Clear();
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
            var sPtr = a.State + stateOffset;
            fixed (float* phiKPtr = phiK, gatePtr = gate, phiQPtr = phiQ, uPtr = u)
            {
                for (var i = 0; i < t; i++)
                {
                    var row = (long)b * t + i;
                    var vPtr = a.Value + row * vStride + (long)kvHead * dv;
                    var k = new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk);
                    var q = new ReadOnlySpan<float>(a.Query + row * qStride + (long)kvHead * group * dk, group * dk);
                    var yPtr = a.Output + row * yStride + (long)kvHead * group * dv;

                    // Keys are never scaled: scale belongs to the query, as in softmax attention's q.k * scale.
                    FeatureMaps.Apply(a.FeatureMap, k, 1f, phiK);
                    for (var g = 0; g < group; g++)
                    {
                        FeatureMaps.Apply(a.FeatureMap, q.Slice(g * dk, dk), a.Scale, phiQ.Slice(g * dk, dk));
                    }

                    // The multiplier of each state row this token: gamma, times exp(g) per head or per key row.
                    float* factor = null;
                    if (s.Gate == GateLayout.PerKey)
                    {
                        TensorPrimitives.Exp(new ReadOnlySpan<float>(a.Decay + row * kStride + (long)kvHead * dk, dk), gate);
                        TensorPrimitives.Multiply(gate, a.Gamma, gate);
                        factor = gatePtr;
                    }
                    else
                    {
                        var scalar = s.Gate == GateLayout.PerHead ? a.Gamma * MathF.Exp(a.Decay[row * a.KvHeads + kvHead]) : a.Gamma;
                        if (scalar != 1f)
                        {
                            gate.Fill(scalar);
                            factor = gatePtr;
                        }
                    }
                    if (factor != null)
                    {
                        TensorPrimitives.Multiply(nu, gate, nu);
                    }

                    if (delta)
                    {
                        // Decay first, then retrieve r = S'^T phi(k) from the decayed state into u.
                        LinearAttentionSweeps.DecayAndRetrieve(sPtr, dk, dv, factor, phiKPtr, uPtr);
                        var beta = a.Beta[s.Beta == BetaLayout.Shared ? row : row * a.KvHeads + kvHead];
                        // u = beta (v - r); nu is S's column for an implicit value that is always 1, so it gets the same correction.
                        TensorPrimitives.Subtract(new ReadOnlySpan<float>(vPtr, dv), u, u);
                        TensorPrimitives.Multiply(u, beta, u);
                        var correction = beta * (1f - TensorPrimitives.Dot(phiK, nu));
                        TensorPrimitives.MultiplyAdd(phiK, correction, nu, nu);
                        LinearAttentionSweeps.WriteAndReadOut(sPtr, dk, dv, null, phiKPtr, uPtr, phiQPtr, group, yPtr);
                    }
                    else
                    {
                        TensorPrimitives.Add(nu, phiK, nu);
                        // The decay rides along with the write: one pass over the state.
                        LinearAttentionSweeps.WriteAndReadOut(sPtr, dk, dv, factor, phiKPtr, vPtr, phiQPtr, group, yPtr);
                    }

                    if (a.Normalize)
                    {
                        for (var g = 0; g < group; g++)
                        {
                            var denominator = TensorPrimitives.Dot(phiQ.Slice(g * dk, dk), nu) + a.Epsilon;
                            var yHead = new Span<float>(yPtr + (long)g * dv, dv);
                            TensorPrimitives.Divide(yHead, denominator, yHead);
                        }
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
