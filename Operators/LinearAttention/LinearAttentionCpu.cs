using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>
/// The float32 CPU recurrence. Work is split by (batch, KV head): each item owns its slice of the state, so the
/// items never write the same memory and need no locks. Query heads of one group share their KV head's state
/// and are read out in the same item.
/// </summary>
internal static unsafe class LinearAttentionCpu
{
    /// <summary>Head dims up to this size keep their scratch vectors on the stack.</summary>
    private const int StackScratchLimit = 1024;

    public struct Job
    {
        // Copied out of the attributes record: the job is reached through a pointer, so it must be unmanaged.
        public int QueryHeads, KvHeads;
        public FeatureMap FeatureMap;
        public bool Normalize;
        public float Epsilon, Scale;
        public LinearAttentionShapes Shapes;

        public readonly int GroupSize => QueryHeads / KvHeads;
        public float* Query, Key, Value, PastState, PastNormalizer;
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
        var s = job->Shapes;
        int dk = s.KeyDim, dv = s.ValueDim, t = s.SequenceLength;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);

        var stateOffset = ((long)b * a.KvHeads + kvHead) * dk * dv;
        var normOffset = ((long)b * a.KvHeads + kvHead) * dk;
        var mu = new Span<float>(job->State + stateOffset, dk * dv);
        var nu = new Span<float>(job->Normalizer + normOffset, dk);
        if (job->PastState != null)
        {
            new ReadOnlySpan<float>(job->PastState + stateOffset, dk * dv).CopyTo(mu);
        }
        else
        {
            mu.Clear();
        }
        if (job->PastNormalizer != null)
        {
            new ReadOnlySpan<float>(job->PastNormalizer + normOffset, dk).CopyTo(nu);
        }
        else
        {
            nu.Clear();
        }

        float[]? rented = null;
        var scratch = dk <= StackScratchLimit
            ? stackalloc float[2 * dk]
            : (rented = ArrayPool<float>.Shared.Rent(2 * dk)).AsSpan(0, 2 * dk);
        try
        {
            var phiK = scratch[..dk];
            var phiQ = scratch.Slice(dk, dk);
            var qStride = (long)a.QueryHeads * dk;
            var kStride = (long)a.KvHeads * dk;
            var vStride = (long)a.KvHeads * dv;
            var yStride = (long)a.QueryHeads * dv;
            for (var i = 0; i < t; i++)
            {
                var row = (long)b * t + i;
                var k = new ReadOnlySpan<float>(job->Key + row * kStride + (long)kvHead * dk, dk);
                var v = new ReadOnlySpan<float>(job->Value + row * vStride + (long)kvHead * dv, dv);
                // Keys are never scaled: scale belongs to the query, as in softmax attention's q.k * scale.
                FeatureMaps.Apply(a.FeatureMap, k, 1f, phiK);
                for (var r = 0; r < dk; r++)
                {
                    var muRow = mu.Slice(r * dv, dv);
                    TensorPrimitives.MultiplyAdd(v, phiK[r], muRow, muRow);
                }
                TensorPrimitives.Add(nu, phiK, nu);

                for (var g = 0; g < a.GroupSize; g++)
                {
                    var qHead = kvHead * a.GroupSize + g;
                    var q = new ReadOnlySpan<float>(job->Query + row * qStride + (long)qHead * dk, dk);
                    var y = new Span<float>(job->Output + row * yStride + (long)qHead * dv, dv);
                    FeatureMaps.Apply(a.FeatureMap, q, a.Scale, phiQ);
                    ReadOut(mu, phiQ, dv, y);
                    if (a.Normalize)
                    {
                        var denominator = TensorPrimitives.Dot(phiQ, nu) + a.Epsilon;
                        TensorPrimitives.Divide(y, denominator, y);
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

    /// <summary>y = phiQ^T mu, accumulated row by row so mu is read once, contiguously.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ReadOut(ReadOnlySpan<float> mu, ReadOnlySpan<float> phiQ, int dv, Span<float> y)
    {
        y.Clear();
        for (var r = 0; r < phiQ.Length; r++)
        {
            TensorPrimitives.MultiplyAdd(mu.Slice(r * dv, dv), phiQ[r], y, y);
        }
    }
}
