using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>
/// The float32 CPU recurrence. Work is split by (batch, KV head): each item owns its slice of the state, so the
/// items never write the same memory and need no locks. Query heads of one group share their KV head's state
/// and are read out in the same item. Each token sweeps the state once (decay, write and read-out fused), or twice
/// for the delta rules, whose write needs the retrieval S'^T phi(k) from the whole decayed state first; the rules
/// without retrieval take four tokens per sweep in a prefill (<see cref="LinearAttentionTokenBlock"/>).
/// </summary>
internal static unsafe class LinearAttentionCpu
{
    /// <summary>The largest whole state (all batch rows and heads) a decode step reads from the past buffer directly: 8 MiB.</summary>
    private const long FusedPastFloats = 2L * 1024 * 1024;

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
        // Auto and null in production; a test or benchmark's forced form otherwise (KernelForms).
        public LinearPrefill Prefill;
        public delegate*<in Job, int, int, float*, float*, bool> OtherItem;
    }

    public static void Run(in KernelContext context, ref Job job)
    {
        var items = (nint)job.Shapes.Batch * job.KvHeads;
        fixed (Job* p = &job)
        {
            var forms = context.Forms;
            job.Prefill = forms?.LinearPrefill ?? LinearPrefill.Auto;
            job.OtherItem = forms is null ? null : forms.LinearItem;
            OrtParallel.For(context, items, p, &RunItem);
        }
    }

    private static void RunItem(void* state, nint item)
    {
        var job = (Job*)state;
        ref readonly var a = ref *job;
        var s = a.Shapes;
        int dk = s.KeyDim, dv = s.ValueDim, group = a.GroupSize;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);

        var stateOffset = ((long)b * a.KvHeads + kvHead) * dk * dv;
        var normOffset = ((long)b * a.KvHeads + kvHead) * dk;
        // A host may bind the same buffer as past and present (state updated in place): then it already holds the past.
        // A single token of a rule without retrieval reads the past straight in its pass over the state instead of
        // copying it first (measured 1.3x to 1.45x faster per decode step), while past and present fit in the caches
        // together; beyond that the pass's stores fetch each present line from memory before writing it, which the
        // copy avoids (measured 1.3x slower at 16 MiB of state on a 32 MiB L3).
        float* source = null;
        if (a.PastState == null)
        {
            new Span<float>(a.State + stateOffset, dk * dv).Clear();
        }
        else if (a.PastState != a.State)
        {
            if (s.SequenceLength == 1 && !UpdateRules.IsDelta(a.Rule) && (long)s.Batch * a.KvHeads * dk * dv <= FusedPastFloats)
            {
                source = a.PastState + stateOffset;
            }
            else
            {
                new ReadOnlySpan<float>(a.PastState + stateOffset, dk * dv).CopyTo(new Span<float>(a.State + stateOffset, dk * dv));
            }
        }
        if (a.PastNormalizer == null)
        {
            new Span<float>(a.Normalizer + normOffset, dk).Clear();
        }
        else if (a.PastNormalizer != a.Normalizer)
        {
            new ReadOnlySpan<float>(a.PastNormalizer + normOffset, dk).CopyTo(new Span<float>(a.Normalizer + normOffset, dk));
        }

        if (a.OtherItem != null && a.OtherItem(a, b, kvHead, a.State + stateOffset, a.Normalizer + normOffset))
        {
            return;
        }

        var blocked = UsesTokenBlocks(a);
        // Blocks use the per-token scratch for four tokens' rows, and as much again for the interleaved copies.
        var tokens = blocked ? LinearAttentionTokenBlock.Tokens : 1;
        var tokenScratch = tokens * (2 + group) * dk + dv;
        var blockScratch = blocked ? LinearAttentionTokenBlock.Tokens * ((2 + group) * dk + group) : 0;
        var scratchLength = tokenScratch + blockScratch;
        float[]? rented = null;
        var scratch = scratchLength <= StackScratchLimit
            ? stackalloc float[scratchLength]
            : (rented = ArrayPool<float>.Shared.Rent(scratchLength)).AsSpan(0, scratchLength);
        try
        {
            fixed (float* p = scratch)
            {
                var slices = new Item
                {
                    B = b,
                    KvHead = kvHead,
                    State = a.State + stateOffset,
                    Source = source,
                    Nu = a.Normalizer + normOffset,
                    PhiK = p,
                    Gate = p + tokens * dk,
                    PhiQ = p + 2 * tokens * dk,
                    U = p + tokens * (2 + group) * dk,
                    BlockK = p + tokenScratch,
                    BlockGate = p + tokenScratch + LinearAttentionTokenBlock.Tokens * dk,
                    BlockQ = p + tokenScratch + 2 * LinearAttentionTokenBlock.Tokens * dk,
                    BlockDen = p + tokenScratch + LinearAttentionTokenBlock.Tokens * (2 + group) * dk,
                };
                var t = s.SequenceLength;
                for (var i = 0; i < t;)
                {
                    if (blocked && t - i >= LinearAttentionTokenBlock.Tokens)
                    {
                        Block(a, slices, i);
                        i += LinearAttentionTokenBlock.Tokens;
                    }
                    else
                    {
                        Token(a, slices, i);
                        i++;
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

    /// <summary>
    /// Several tokens per pass over the state: only the rules without a retrieval (the delta rules need the whole
    /// decayed state before each write), and up to four query heads per KV head (their read-outs stay in registers).
    /// </summary>
    private static bool UsesTokenBlocks(in Job a) =>
        a.Prefill != LinearPrefill.PerToken && !UpdateRules.IsDelta(a.Rule) && a.GroupSize <= LinearAttentionTokenBlock.MaxHeads
        && a.Shapes.SequenceLength >= LinearAttentionTokenBlock.Tokens;

    /// <summary>
    /// How many tokens ahead the prefill asks for its rows. One token's rows of one head lie a whole [heads x head_dim]
    /// row apart (4 KiB at 16 heads of 64): a new page each token, where the hardware prefetchers stop, so without this
    /// every token's q, k, v and y rows are demand misses once the inputs outgrow the caches (measured: 1.7x slower at
    /// batch 8, 16 heads of 64). Into L2, not L1: rows a multiple of 4 KiB apart all fall in the same few L1 sets, so
    /// lines fetched further ahead than a block or so would evict each other there (measured: 4 tokens ahead into L1,
    /// or 8 into L2, beat 16 and 32).
    /// </summary>
    private const int PrefetchDistance = 2 * LinearAttentionTokenBlock.Tokens;

    /// <summary>Asks for the cache lines of tokens [first, first + count) that this item reads or writes.</summary>
    private static void Prefetch(in Job a, in Item it, int first, int count)
    {
        if (!Sse.IsSupported)
        {
            return;
        }
        var s = a.Shapes;
        int dk = s.KeyDim, dv = s.ValueDim, group = a.GroupSize;
        var end = Math.Min(first + count, s.SequenceLength);
        for (var i = first; i < end; i++)
        {
            var row = (long)it.B * s.SequenceLength + i;
            Lines(a.Query + row * a.QueryHeads * dk + (long)it.KvHead * group * dk, group * dk);
            Lines(a.Key + row * a.KvHeads * dk + (long)it.KvHead * dk, dk);
            Lines(a.Value + row * a.KvHeads * dv + (long)it.KvHead * dv, dv);
            Lines(a.Output + row * a.QueryHeads * dv + (long)it.KvHead * group * dv, group * dv);
            if (s.Gate == GateLayout.PerKey)
            {
                Lines(a.Decay + row * a.KvHeads * dk + (long)it.KvHead * dk, dk);
            }
        }

        static void Lines(float* p, int floats)
        {
            const int lineFloats = 64 / sizeof(float);
            for (var f = 0; f < floats; f += lineFloats)
            {
                Sse.Prefetch1(p + f);
            }
            // The last float's line, when the row does not start on a line boundary.
            Sse.Prefetch1(p + floats - 1);
        }
    }

    /// <summary>One work item's slices and scratch (all pointers: the scratch is pinned for the item's lifetime).</summary>
    private struct Item
    {
        public int B, KvHead;
        public float* State, Nu;
        /// <summary>Where the first pass reads the past state from when it is not already in <see cref="State"/> (else null).</summary>
        public float* Source;
        /// <summary>Per-token scratch: phi(k) [d_k], gate [d_k], phi(q) [group, d_k] (times 4 for blocks), u [d_v].</summary>
        public float* PhiK, Gate, PhiQ, U;
        /// <summary>Token-block scratch: phi(k) and gates [d_k, 4], phi(q) [d_k, 4, group], denominators [4, group].</summary>
        public float* BlockK, BlockGate, BlockQ, BlockDen;
    }

    /// <summary>
    /// Token i's feature maps into phiK [d_k] and phiQ [group, d_k], and its row multiplier: returns null when the state
    /// is not decayed this token (gamma 1, no gate) unless <paramref name="alwaysFactor"/>, else <paramref name="gate"/>
    /// [d_k] filled with gamma times exp(g) per head or per key row.
    /// </summary>
    private static float* Prepare(in Job a, int b, int kvHead, int i, float* phiK, float* phiQ, float* gate, bool alwaysFactor)
    {
        var s = a.Shapes;
        int dk = s.KeyDim, group = a.GroupSize;
        var row = (long)b * s.SequenceLength + i;
        var kStride = (long)a.KvHeads * dk;
        var k = new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk);
        var q = new ReadOnlySpan<float>(a.Query + row * a.QueryHeads * dk + (long)kvHead * group * dk, group * dk);
        // Keys are never scaled: scale belongs to the query, as in softmax attention's q.k * scale.
        FeatureMaps.Apply(a.FeatureMap, k, 1f, new Span<float>(phiK, dk));
        for (var g = 0; g < group; g++)
        {
            FeatureMaps.Apply(a.FeatureMap, q.Slice(g * dk, dk), a.Scale, new Span<float>(phiQ + g * dk, dk));
        }

        var gates = new Span<float>(gate, dk);
        if (s.Gate == GateLayout.PerKey)
        {
            TensorPrimitives.Exp(new ReadOnlySpan<float>(a.Decay + row * kStride + (long)kvHead * dk, dk), gates);
            TensorPrimitives.Multiply(gates, a.Gamma, gates);
            return gate;
        }
        var scalar = s.Gate == GateLayout.PerHead ? a.Gamma * MathF.Exp(a.Decay[row * a.KvHeads + kvHead]) : a.Gamma;
        if (scalar == 1f && !alwaysFactor)
        {
            return null;
        }
        gates.Fill(scalar);
        return gate;
    }

    /// <summary>One token: the fused pass (two for the delta rules), then the normalisation.</summary>
    private static void Token(in Job a, in Item it, int i)
    {
        var s = a.Shapes;
        int dk = s.KeyDim, dv = s.ValueDim, group = a.GroupSize;
        var row = (long)it.B * s.SequenceLength + i;
        var vPtr = a.Value + row * a.KvHeads * dv + (long)it.KvHead * dv;
        var yPtr = a.Output + row * a.QueryHeads * dv + (long)it.KvHead * group * dv;
        if (s.SequenceLength > 1)
        {
            Prefetch(a, it, i + PrefetchDistance, 1);
        }
        var factor = Prepare(a, it.B, it.KvHead, i, it.PhiK, it.PhiQ, it.Gate, alwaysFactor: false);
        var nu = new Span<float>(it.Nu, dk);
        var phiK = new ReadOnlySpan<float>(it.PhiK, dk);
        if (factor != null)
        {
            TensorPrimitives.Multiply(nu, new ReadOnlySpan<float>(factor, dk), nu);
        }

        if (UpdateRules.IsDelta(a.Rule))
        {
            // Decay first, then retrieve r = S'^T phi(k) from the decayed state into u.
            LinearAttentionSweeps.DecayAndRetrieve(it.State, dk, dv, factor, it.PhiK, it.U);
            var beta = a.Beta[s.Beta == BetaLayout.Shared ? row : row * a.KvHeads + it.KvHead];
            // u = beta (v - r); nu is S's column for an implicit value that is always 1, so it gets the same correction.
            var u = new Span<float>(it.U, dv);
            TensorPrimitives.Subtract(new ReadOnlySpan<float>(vPtr, dv), u, u);
            TensorPrimitives.Multiply(u, beta, u);
            var correction = beta * (1f - TensorPrimitives.Dot(phiK, nu));
            TensorPrimitives.MultiplyAdd(phiK, correction, nu, nu);
            LinearAttentionSweeps.WriteAndReadOut(it.State, dk, dv, null, it.PhiK, it.U, it.PhiQ, group, yPtr);
        }
        else
        {
            TensorPrimitives.Add(nu, phiK, nu);
            // The decay rides along with the write: one pass over the state.
            LinearAttentionSweeps.WriteAndReadOut(it.State, dk, dv, factor, it.PhiK, vPtr, it.PhiQ, group, yPtr, it.Source);
        }

        if (a.Normalize)
        {
            for (var g = 0; g < group; g++)
            {
                var denominator = TensorPrimitives.Dot(new ReadOnlySpan<float>(it.PhiQ + g * dk, dk), nu) + a.Epsilon;
                var yHead = new Span<float>(yPtr + (long)g * dv, dv);
                TensorPrimitives.Divide(yHead, denominator, yHead);
            }
        }
    }

    /// <summary>
    /// Tokens i..i+3 of a rule without retrieval: the normaliser and denominators token by token (cheap: d_k per
    /// token), the state in one <see cref="LinearAttentionTokenBlock"/> pass.
    /// </summary>
    private static void Block(in Job a, in Item it, int i)
    {
        const int n = LinearAttentionTokenBlock.Tokens;
        var s = a.Shapes;
        int dk = s.KeyDim, dv = s.ValueDim, group = a.GroupSize;
        var gated = s.Gate != GateLayout.None || a.Gamma != 1f;
        Prefetch(a, it, i + PrefetchDistance, n);
        // Token-major first ([4, d_k], [4, group, d_k]: what the feature maps write), then interleaved for the pass.
        float* kRows = it.PhiK, qRows = it.PhiQ, gateRows = it.Gate, den = it.BlockDen;
        var nu = new Span<float>(it.Nu, dk);
        for (var j = 0; j < n; j++)
        {
            var phiK = kRows + j * dk;
            var phiQ = qRows + j * group * dk;
            var factor = Prepare(a, it.B, it.KvHead, i + j, phiK, phiQ, gateRows + j * dk, alwaysFactor: gated);
            if (factor != null)
            {
                TensorPrimitives.Multiply(nu, new ReadOnlySpan<float>(factor, dk), nu);
            }
            TensorPrimitives.Add(nu, new ReadOnlySpan<float>(phiK, dk), nu);
            if (a.Normalize)
            {
                for (var g = 0; g < group; g++)
                {
                    den[j * group + g] = TensorPrimitives.Dot(new ReadOnlySpan<float>(phiQ + g * dk, dk), nu) + a.Epsilon;
                }
            }
        }
        Transpose.Rows(kRows, n, dk, it.BlockK);
        Transpose.Rows(qRows, n * group, dk, it.BlockQ);
        if (gated)
        {
            Transpose.Rows(gateRows, n, dk, it.BlockGate);
        }

        var row = (long)it.B * s.SequenceLength + i;
        var vStride = (long)a.KvHeads * dv;
        var yStride = (long)a.QueryHeads * dv;
        var vPtr = a.Value + row * vStride + (long)it.KvHead * dv;
        var yPtr = a.Output + row * yStride + (long)it.KvHead * group * dv;
        LinearAttentionTokenBlock.WriteAndReadOut(it.State, dk, dv, gated ? it.BlockGate : null, it.BlockK, vPtr, vStride,
            it.BlockQ, group, yPtr, yStride);

        if (a.Normalize)
        {
            for (var j = 0; j < n; j++)
                for (var g = 0; g < group; g++)
                {
                    var yHead = new Span<float>(yPtr + j * yStride + (long)g * dv, dv);
                    TensorPrimitives.Divide(yHead, den[j * group + g], yHead);
                }
        }
    }
}
