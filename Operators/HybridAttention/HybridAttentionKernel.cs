using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>
/// Validates one call's tensors, seeds the present state with the past one (or zeros) and runs the CPU
/// recurrence per (batch, KV head) directly in the present state.
/// </summary>
internal sealed unsafe class HybridAttentionKernel(HybridAttentionAttributes attributes) : IKernel
{
    public HybridAttentionAttributes Attributes { get; } = attributes;

    public void Compute(in KernelContext context)
    {
        var a = Attributes;
        var shapes = HybridAttentionShapes.From(context, a);
        var s = shapes.Qkv;
        long b = s.Batch, dk = s.KeyDim, dv = s.ValueDim;

        var y = context.Output(HybridAttentionOperator.OutputY, [b, s.SequenceLength, (long)a.Heads.QueryHeads * dv]);
        var c = HybridAttentionContract.Contract;
        using var keyCache = StateBuffer.For(context, c, HybridAttentionContract.Key, a, b, dk, dv);
        using var valueCache = StateBuffer.For(context, c, HybridAttentionContract.Value, a, b, dk, dv);
        using var position = StateBuffer.For(context, c, HybridAttentionContract.Position, a, b, dk, dv);
        using var compressedKey = StateBuffer.For(context, c, HybridAttentionContract.CompressedKey, a, b, dk, dv);
        using var compressedValue = StateBuffer.For(context, c, HybridAttentionContract.CompressedValue, a, b, dk, dv);

        // Without a past, each item zeroes the ring rows its call will not write (the rest are written before they
        // are read): for long windows, clearing the whole cache here, on one thread, was a large part of a prefill.
        if (shapes.HasPast)
        {
            keyCache.SeedFrom<float>(context.Input(HybridAttentionOperator.InputPastKey));
            valueCache.SeedFrom<float>(context.Input(HybridAttentionOperator.InputPastValue));
        }
        position.Seed<long>(context, HybridAttentionOperator.InputPastPosition, shapes.HasPast);
        compressedKey.Seed<float>(context, HybridAttentionOperator.InputPastCompressedKey, shapes.HasPast);
        compressedValue.Seed<float>(context, HybridAttentionOperator.InputPastCompressedValue, shapes.HasPast);

        using var query = FloatIO.Read(context.Input(HybridAttentionOperator.InputQuery));
        using var key = FloatIO.Read(context.Input(HybridAttentionOperator.InputKey));
        using var value = FloatIO.Read(context.Input(HybridAttentionOperator.InputValue));
        using var output = FloatIO.Writable(y);
        var job = new HybridAttentionCpu.Job
        {
            QueryHeads = a.Heads.QueryHeads,
            KvHeads = a.Heads.KvHeads,
            Window = a.Window,
            Compress = a.Compress,
            Scale = a.Heads.ScaleFor(s.KeyDim),
            Epsilon = a.Epsilon,
            Shapes = s,
            Query = query.Data,
            Key = key.Data,
            Value = value.Data,
            Output = output.Data,
            KeyCache = (float*)keyCache.Data,
            ValueCache = (float*)valueCache.Data,
            CompressedKey = (float*)compressedKey.Data,
            CompressedValue = (float*)compressedValue.Data,
            PastPosition = (long*)position.Data,
            ClearUnwrittenRows = !shapes.HasPast,
        };
        if (a.Compress == CompressKind.Hedgehog)
        {
            job.Projections = a.Projections;
            job.FeatureQueryWeight = (float*)context.Input(HybridAttentionOperator.InputFeatureQueryWeight).Data;
            job.FeatureQueryBias = (float*)context.Input(HybridAttentionOperator.InputFeatureQueryBias).Data;
            job.FeatureKeyWeight = (float*)context.Input(HybridAttentionOperator.InputFeatureKeyWeight).Data;
            job.FeatureKeyBias = (float*)context.Input(HybridAttentionOperator.InputFeatureKeyBias).Data;
            job.Mix = (float*)context.Input(HybridAttentionOperator.InputMix).Data;
        }
        HybridAttentionCpu.Run(context, ref job);
        // Items read the past positions, so they advance only once every item is done.
        var positions = position.AsSpan<long>();
        for (var i = 0; i < positions.Length; i++)
        {
            positions[i] += s.SequenceLength;
        }
        FloatIO.Commit(output, y);
    }
}
