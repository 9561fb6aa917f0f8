using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>
/// Validates one call's tensors, seeds the present cache with the past one (or zeros) and runs the CPU kernel
/// per (batch, KV head) directly in the present cache.
/// </summary>
internal sealed unsafe class WindowAttentionKernel(WindowAttentionAttributes attributes) : IKernel
{
    public WindowAttentionAttributes Attributes { get; } = attributes;

    public void Compute(in KernelContext context)
    {
        var a = Attributes;
        var shapes = WindowAttentionShapes.From(context, a);
        var s = shapes.Qkv;
        long b = s.Batch, dk = s.KeyDim, dv = s.ValueDim;

        var y = context.Output(WindowAttentionOperator.OutputY, [b, s.SequenceLength, (long)a.Heads.QueryHeads * dv]);
        var contract = WindowAttentionContract.Contract;
        using var keyCache = StateBuffer.For(context, contract, WindowAttentionContract.KeyCache, a, b, dk, dv);
        using var valueCache = StateBuffer.For(context, contract, WindowAttentionContract.ValueCache, a, b, dk, dv);
        using var position = StateBuffer.For(context, WindowAttentionOperator.OutputPresentPosition,
            [shapes.SharedPosition ? 1 : b], sizeof(long));

        // One past position per batch row, whatever shape past_position came in; on the stack for usual batches so a
        // decode step allocates nothing.
        Span<long> pastPositions = b <= 1024 ? stackalloc long[(int)b] : new long[b];
        if (shapes.HasPast)
        {
            keyCache.SeedFrom<float>(context.Input(WindowAttentionOperator.InputPastKeyCache));
            valueCache.SeedFrom<float>(context.Input(WindowAttentionOperator.InputPastValueCache));
            var given = context.Input(WindowAttentionOperator.InputPastPosition).AsReadOnlySpan<long>();
            for (var i = 0; i < pastPositions.Length; i++)
            {
                pastPositions[i] = given[shapes.SharedPosition ? 0 : i];
            }
        }
        else
        {
            keyCache.AsSpan<float>().Clear();
            valueCache.AsSpan<float>().Clear();
        }
        var present = position.AsSpan<long>();
        for (var i = 0; i < present.Length; i++)
        {
            present[i] = pastPositions[i] + s.SequenceLength;
        }

        using var query = FloatIO.Read(context.Input(WindowAttentionOperator.InputQuery));
        using var key = FloatIO.Read(context.Input(WindowAttentionOperator.InputKey));
        using var value = FloatIO.Read(context.Input(WindowAttentionOperator.InputValue));
        using var output = FloatIO.Writable(y);
        fixed (long* past = pastPositions)
        {
            var job = new WindowAttentionCpu.Job
            {
                QueryHeads = a.Heads.QueryHeads,
                KvHeads = a.Heads.KvHeads,
                Window = a.Window,
                Sinks = a.Sinks,
                Scale = a.Heads.ScaleFor(s.KeyDim),
                Softcap = a.Softcap,
                Shapes = s,
                Query = query.Data,
                Key = key.Data,
                Value = value.Data,
                Output = output.Data,
                KeyCache = (float*)keyCache.Data,
                ValueCache = (float*)valueCache.Data,
                PastPosition = past,
            };
            WindowAttentionCpu.Run(context, ref job);
        }
        FloatIO.Commit(output, y);
    }
}
