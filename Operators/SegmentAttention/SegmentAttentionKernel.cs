using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SegmentAttention;

/// <summary>
/// Validates one call's tensors, seeds the present state with the past one (or zeros) and runs the CPU
/// recurrence per (batch, KV head) directly in the present state.
/// </summary>
internal sealed unsafe class SegmentAttentionKernel(SegmentAttentionAttributes attributes) : IKernel
{
    public SegmentAttentionAttributes Attributes { get; } = attributes;

    public void Compute(in KernelContext context)
    {
        var a = Attributes;
        var shapes = SegmentAttentionShapes.From(context, a);
        var s = shapes.Qkv;
        long b = s.Batch, dk = s.KeyDim, dv = s.ValueDim;

        var y = context.Output(SegmentAttentionOperator.OutputY, [b, s.SequenceLength, (long)a.Heads.QueryHeads * dv]);
        var c = SegmentAttentionContract.Contract;
        using var memoryKey = StateBuffer.For(context, c, SegmentAttentionContract.MemoryKey, a, b, dk, dv);
        using var memoryValue = StateBuffer.For(context, c, SegmentAttentionContract.MemoryValue, a, b, dk, dv);
        using var segmentKey = StateBuffer.For(context, c, SegmentAttentionContract.SegmentKey, a, b, dk, dv);
        using var segmentValue = StateBuffer.For(context, c, SegmentAttentionContract.SegmentValue, a, b, dk, dv);
        using var position = StateBuffer.For(context, c, SegmentAttentionContract.Position, a, b, dk, dv);

        // Rows that hold no token are cleared per item by the CPU code, so stale input rows never leak out; without a
        // past that is every row, so the buffers are not cleared here as well (for long segments, clearing is the
        // bulk of a short call's time).
        if (shapes.HasPast)
        {
            memoryKey.SeedFrom<float>(context.Input(SegmentAttentionOperator.InputPastMemoryKey));
            memoryValue.SeedFrom<float>(context.Input(SegmentAttentionOperator.InputPastMemoryValue));
            segmentKey.SeedFrom<float>(context.Input(SegmentAttentionOperator.InputPastSegmentKey));
            segmentValue.SeedFrom<float>(context.Input(SegmentAttentionOperator.InputPastSegmentValue));
        }
        position.Seed<long>(context, SegmentAttentionOperator.InputPastPosition, shapes.HasPast);

        using var query = FloatIO.Read(context.Input(SegmentAttentionOperator.InputQuery));
        using var key = FloatIO.Read(context.Input(SegmentAttentionOperator.InputKey));
        using var value = FloatIO.Read(context.Input(SegmentAttentionOperator.InputValue));
        using var output = FloatIO.Writable(y);
        var job = new SegmentAttentionCpu.Job
        {
            QueryHeads = a.Heads.QueryHeads,
            KvHeads = a.Heads.KvHeads,
            SegmentLength = a.SegmentLength,
            Scale = a.Heads.ScaleFor(s.KeyDim),
            Shapes = s,
            Query = query.Data,
            Key = key.Data,
            Value = value.Data,
            Output = output.Data,
            MemoryKey = (float*)memoryKey.Data,
            MemoryValue = (float*)memoryValue.Data,
            SegmentKey = (float*)segmentKey.Data,
            SegmentValue = (float*)segmentValue.Data,
            PastPosition = (long*)position.Data,
        };
        SegmentAttentionCpu.Run(context, ref job);
        // Items read the past positions, so they advance only once every item is done.
        var positions = position.AsSpan<long>();
        for (var i = 0; i < positions.Length; i++)
        {
            positions[i] += s.SequenceLength;
        }
        FloatIO.Commit(output, y);
    }
}
