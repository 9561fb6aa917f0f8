using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>
/// Validates one call's tensors, seeds the present state with the past one (or zeros) and runs the CPU
/// recurrence per (batch, KV head) directly in the present state.
/// </summary>
internal sealed unsafe class SummaryAttentionKernel(SummaryAttentionAttributes attributes) : IKernel
{
    public SummaryAttentionAttributes Attributes { get; } = attributes;

    public void Compute(in KernelContext context)
    {
        var a = Attributes;
        var shapes = SummaryAttentionShapes.From(context, a);
        var s = shapes.Qkv;
        long b = s.Batch, dk = s.KeyDim, dv = s.ValueDim, rows = shapes.SummaryRows, m = shapes.WindowRows;

        var y = context.Output(SummaryAttentionOperator.OutputY, [b, s.SequenceLength, (long)a.Heads.QueryHeads * dv]);
        var c = SummaryAttentionContract.Contract;
        using var keySummary = StateBuffer.For(context, c, SummaryAttentionContract.KeySummary, a, b, dk, dv);
        using var valueSummary = StateBuffer.For(context, c, SummaryAttentionContract.ValueSummary, a, b, dk, dv);
        using var count = StateBuffer.For(context, c, SummaryAttentionContract.Count, a, b, dk, dv);
        using var keyWindow = StateBuffer.For(context, c, SummaryAttentionContract.KeyWindow, a, b, dk, dv);
        using var valueWindow = StateBuffer.For(context, c, SummaryAttentionContract.ValueWindow, a, b, dk, dv);

        if (shapes.HasPast)
        {
            keySummary.SeedFrom<float>(context.Input(SummaryAttentionOperator.InputPastKeySummary));
            valueSummary.SeedFrom<float>(context.Input(SummaryAttentionOperator.InputPastValueSummary));
            count.SeedFrom<long>(context.Input(SummaryAttentionOperator.InputPastCount));
            if (m > 0)
            {
                keyWindow.SeedFrom<float>(context.Input(SummaryAttentionOperator.InputPastKeyWindow));
                valueWindow.SeedFrom<float>(context.Input(SummaryAttentionOperator.InputPastValueWindow));
            }
        }
        else
        {
            keySummary.AsSpan<float>().Clear();
            valueSummary.AsSpan<float>().Clear();
            count.AsSpan<long>().Clear();
            keyWindow.AsSpan<float>().Clear();
            valueWindow.AsSpan<float>().Clear();
        }

        var slotAlpha = stackalloc float[SummaryAttentionAttributes.MaxSlots];
        for (var i = 0; i < a.NumSlots; i++)
        {
            slotAlpha[i] = (float)a.SlotAlpha(i);
        }

        using var query = FloatIO.Read(context.Input(SummaryAttentionOperator.InputQuery));
        using var key = FloatIO.Read(context.Input(SummaryAttentionOperator.InputKey));
        using var value = FloatIO.Read(context.Input(SummaryAttentionOperator.InputValue));
        using var output = FloatIO.Writable(y);
        var job = new SummaryAttentionCpu.Job
        {
            QueryHeads = a.Heads.QueryHeads,
            KvHeads = a.Heads.KvHeads,
            Kind = a.Kind,
            Scale = a.Heads.ScaleFor(s.KeyDim),
            Slots = (int)rows,
            Window = (int)m,
            SlotAlpha = slotAlpha,
            Shapes = s,
            Query = query.Data,
            Key = key.Data,
            Value = value.Data,
            Output = output.Data,
            KeySummary = (float*)keySummary.Data,
            ValueSummary = (float*)valueSummary.Data,
            KeyWindow = (float*)keyWindow.Data,
            ValueWindow = (float*)valueWindow.Data,
            PastCount = (long*)count.Data,
        };
        SummaryAttentionCpu.Run(context, ref job);
        // Items read the past counts, so they advance only once every item is done.
        var counts = count.AsSpan<long>();
        for (var i = 0; i < counts.Length; i++)
        {
            counts[i] += s.SequenceLength;
        }
        FloatIO.Commit(output, y);
    }
}
