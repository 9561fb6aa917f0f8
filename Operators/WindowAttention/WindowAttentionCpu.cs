using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.Simd;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>
/// The float32 CPU kernel. Tokens are written into the cache one by one and each query reads the cache right
/// after its own token went in: at that moment the ring holds exactly that query's window, so a prefill of any
/// length (longer than the window too) sees what token-by-token decode would. Work is split by (batch, KV head):
/// each item owns its slice of the cache, so items never write the same memory. Long prefills with long windows
/// go by blocks of queries instead (<see cref="WindowAttentionBlocks"/>), which compute the same sets.
/// </summary>
internal static unsafe class WindowAttentionCpu
{
    /// <summary>Scratch up to this many floats lives on the stack.</summary>
    private const int StackScratchLimit = 4096;

    public struct Job
    {
        // Copied out of the attributes record: the job is reached through a pointer, so it must be unmanaged.
        public int QueryHeads, KvHeads, Window, Sinks;
        public float Scale, Softcap;
        public QkvShapes Shapes;
        public float* Query, Key, Value, Output;
        // Present cache, already holding the past cache (or zeros) when the items start.
        public float* KeyCache, ValueCache;
        // One per batch row.
        public long* PastPosition;
        // Auto in production; a test or benchmark's forced form otherwise (KernelForms).
        public WindowPrefill Prefill;

        public readonly int GroupSize => QueryHeads / KvHeads;
    }

    public static void Run(in KernelContext context, ref Job job)
    {
        var items = (nint)job.Shapes.Batch * job.KvHeads;
        fixed (Job* p = &job)
        {
            job.Prefill = context.Forms?.WindowPrefill ?? WindowPrefill.Auto;
            OrtParallel.For(context, items, p, &RunItem);
        }
    }

    private static void RunItem(void* state, nint item)
    {
        var job = (Job*)state;
        ref readonly var a = ref *job;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);
        if (WindowAttentionBlocks.Applies(a, a.PastPosition[b]))
        {
            WindowAttentionBlocks.Run(a, b, kvHead);
        }
        else
        {
            PerToken(a, b, kvHead);
        }
    }

    private static void PerToken(in Job a, int b, int kvHead)
    {
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, w = a.Window, sinks = a.Sinks, rows = sinks + w;
        var head = (long)b * a.KvHeads + kvHead;
        var keyCache = a.KeyCache + head * rows * dk;
        var valueCache = a.ValueCache + head * rows * dv;
        var past = a.PastPosition[b];

        float[]? rented = null;
        var scratch = rows <= StackScratchLimit
            ? stackalloc float[rows]
            : (rented = ArrayPool<float>.Shared.Rent(rows)).AsSpan(0, rows);
        try
        {
            fixed (float* scores = scratch)
            {
                long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
                long yStride = (long)a.QueryHeads * dv;
                for (var i = 0; i < t; i++)
                {
                    var row = (long)b * t + i;
                    var position = past + i;
                    WriteToken(a, keyCache, valueCache, a.Key + row * kStride + (long)kvHead * dk, a.Value + row * vStride + (long)kvHead * dv, position);
                    // The window fills ring rows in order before it wraps, so ring rows [0, inWindow) are exactly the
                    // window. Sinks still inside the window are read there, so only sinks 0 .. position-W are added.
                    var inWindow = (int)Math.Min(position + 1, w);
                    var sinkRows = (int)Math.Clamp(position - w + 1, 0, sinks);
                    var slots = sinkRows + inWindow;

                    for (var g = 0; g < a.GroupSize; g++)
                    {
                        var qHead = kvHead * a.GroupSize + g;
                        var q = a.Query + row * qStride + (long)qHead * dk;
                        var y = a.Output + row * yStride + (long)qHead * dv;
                        Gemv.Dots(q, dk, keyCache, dk, sinkRows, scores);
                        Gemv.Dots(q, dk, keyCache + (long)sinks * dk, dk, inWindow, scores + sinkRows);
                        var total = Softmax(new Span<float>(scores, slots), a.Scale, a.Softcap);
                        Gemv.WeightedSum(scores, valueCache, dv, sinkRows, dv, y, accumulate: false);
                        Gemv.WeightedSum(scores + sinkRows, valueCache + (long)sinks * dv, dv, inWindow, dv, y, accumulate: true);
                        var yHead = new Span<float>(y, dv);
                        TensorPrimitives.Multiply(yHead, 1f / total, yHead);
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

    /// <summary>Puts the token at <paramref name="position"/> into its ring row, and into its sink row while it is one of the first sinks.</summary>
    internal static void WriteToken(in Job a, float* keyCache, float* valueCache, float* k, float* v, long position)
    {
        int dk = a.Shapes.KeyDim, dv = a.Shapes.ValueDim, sinks = a.Sinks;
        var ringRow = sinks + (int)(position % a.Window);
        new ReadOnlySpan<float>(k, dk).CopyTo(new Span<float>(keyCache + (long)ringRow * dk, dk));
        new ReadOnlySpan<float>(v, dv).CopyTo(new Span<float>(valueCache + (long)ringRow * dv, dv));
        if (position < sinks)
        {
            new ReadOnlySpan<float>(k, dk).CopyTo(new Span<float>(keyCache + position * dk, dk));
            new ReadOnlySpan<float>(v, dv).CopyTo(new Span<float>(valueCache + position * dv, dv));
        }
    }

    /// <summary>scores = exp(s - max s) in place, with s the capped scores (<see cref="Cap"/>); returns their sum.</summary>
    internal static float Softmax(Span<float> scores, float scale, float softcap)
    {
        fixed (float* x = scores)
        {
            return Exponentials.ExpSum(x, scores.Length, CapAndMax(scores, scale, softcap));
        }
    }

    /// <summary><see cref="Cap"/>, returning the largest capped score (negative infinity for none).</summary>
    internal static float CapAndMax(Span<float> scores, float scale, float softcap)
    {
        if (softcap > 0f)
        {
            Cap(scores, scale, softcap);
            return scores.IsEmpty ? float.NegativeInfinity : TensorPrimitives.Max(scores);
        }
        fixed (float* x = scores)
        {
            return Exponentials.ScaleAndMax(x, scores.Length, scale);
        }
    }

    /// <summary>s = cap * tanh(scale * raw / cap) when softcapped, else scale * raw, in place.</summary>
    internal static void Cap(Span<float> scores, float scale, float softcap)
    {
        TensorPrimitives.Multiply(scores, scale, scores);
        if (softcap > 0f)
        {
            TensorPrimitives.Multiply(scores, 1f / softcap, scores);
            TensorPrimitives.Tanh(scores, scores);
            TensorPrimitives.Multiply(scores, softcap, scores);
        }
    }
}
