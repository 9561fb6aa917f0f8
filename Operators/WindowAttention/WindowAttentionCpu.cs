using System.Buffers;
using System.Numerics.Tensors;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>
/// The float32 CPU kernel. Tokens are written into the cache one by one and each query reads the cache right
/// after its own token went in: at that moment the ring holds exactly that query's window, so a prefill of any
/// length (longer than the window too) sees what token-by-token decode would. Work is split by (batch, KV head):
/// each item owns its slice of the cache, so items never write the same memory.
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

        public readonly int GroupSize => QueryHeads / KvHeads;
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
        var sh = a.Shapes;
        int dk = sh.KeyDim, dv = sh.ValueDim, t = sh.SequenceLength, w = a.Window, sinks = a.Sinks, rows = sinks + w;
        var b = (int)(item / a.KvHeads);
        var kvHead = (int)(item % a.KvHeads);
        var head = (long)b * a.KvHeads + kvHead;

        var keyCache = new Span<float>(a.KeyCache + head * rows * dk, rows * dk);
        var valueCache = new Span<float>(a.ValueCache + head * rows * dv, rows * dv);
        var past = a.PastPosition[b];

        float[]? rented = null;
        var scratch = rows <= StackScratchLimit
            ? stackalloc float[rows]
            : (rented = ArrayPool<float>.Shared.Rent(rows)).AsSpan(0, rows);
        try
        {
            long qStride = (long)a.QueryHeads * dk, kStride = (long)a.KvHeads * dk, vStride = (long)a.KvHeads * dv;
            long yStride = (long)a.QueryHeads * dv;
            for (var i = 0; i < t; i++)
            {
                var row = (long)b * t + i;
                var k = new ReadOnlySpan<float>(a.Key + row * kStride + (long)kvHead * dk, dk);
                var v = new ReadOnlySpan<float>(a.Value + row * vStride + (long)kvHead * dv, dv);
                var position = past + i;
                var ringRow = sinks + (int)(position % w);
                k.CopyTo(keyCache.Slice(ringRow * dk, dk));
                v.CopyTo(valueCache.Slice(ringRow * dv, dv));
                if (position < sinks)
                {
                    k.CopyTo(keyCache.Slice((int)position * dk, dk));
                    v.CopyTo(valueCache.Slice((int)position * dv, dv));
                }
                // The window fills ring rows in order before it wraps, so ring rows [0, inWindow) are exactly the
                // window. Sinks still inside the window are read there, so only sinks 0 .. position-W are added.
                var inWindow = (int)Math.Min(position + 1, w);
                var sinkRows = (int)Math.Clamp(position - w + 1, 0, sinks);
                var slots = sinkRows + inWindow;
                var scores = scratch[..slots];

                for (var g = 0; g < a.GroupSize; g++)
                {
                    var qHead = kvHead * a.GroupSize + g;
                    var q = new ReadOnlySpan<float>(a.Query + row * qStride + (long)qHead * dk, dk);
                    var y = new Span<float>(a.Output + row * yStride + (long)qHead * dv, dv);
                    for (var j = 0; j < sinkRows; j++)
                    {
                        scores[j] = TensorPrimitives.Dot(q, keyCache.Slice(j * dk, dk));
                    }
                    for (var j = 0; j < inWindow; j++)
                    {
                        scores[sinkRows + j] = TensorPrimitives.Dot(q, keyCache.Slice((sinks + j) * dk, dk));
                    }
                    TensorPrimitives.Multiply(scores, a.Scale, scores);
                    if (a.Softcap > 0f)
                    {
                        TensorPrimitives.Multiply(scores, 1f / a.Softcap, scores);
                        TensorPrimitives.Tanh(scores, scores);
                        TensorPrimitives.Multiply(scores, a.Softcap, scores);
                    }
                    var max = TensorPrimitives.Max(scores);
                    TensorPrimitives.Subtract(scores, max, scores);
                    TensorPrimitives.Exp(scores, scores);
                    var total = TensorPrimitives.Sum(scores);
                    y.Clear();
                    for (var j = 0; j < sinkRows; j++)
                    {
                        TensorPrimitives.MultiplyAdd(valueCache.Slice(j * dv, dv), scores[j], y, y);
                    }
                    for (var j = 0; j < inWindow; j++)
                    {
                        TensorPrimitives.MultiplyAdd(valueCache.Slice((sinks + j) * dv, dv), scores[sinkRows + j], y, y);
                    }
                    TensorPrimitives.Multiply(y, 1f / total, y);
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
