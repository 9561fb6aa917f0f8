using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>Validates one call's tensors, allocates the outputs and runs the CPU recurrence per (batch, KV head).</summary>
internal sealed unsafe class LinearAttentionKernel(LinearAttentionAttributes attributes) : IKernel
{
    public LinearAttentionAttributes Attributes { get; } = attributes;

    public void Compute(in KernelContext context)
    {
        var a = Attributes;
        var shapes = LinearAttentionShapes.From(context, a);
        int b = shapes.Batch, t = shapes.SequenceLength, dk = shapes.KeyDim, dv = shapes.ValueDim;

        var y = context.Output(LinearAttentionOperator.OutputY, [b, t, (long)a.QueryHeads * dv]);
        // A node may leave the state outputs out (it wants only y): the state then lives in scratch for this call.
        var c = LinearAttentionContract.Contract;
        using var state = StateBuffer.For(context, c, LinearAttentionContract.State, a, b, dk, dv);
        using var normalizer = StateBuffer.For(context, c, LinearAttentionContract.Normalizer, a, b, dk, dv);

        using var query = FloatIO.Read(context.Input(LinearAttentionOperator.InputQuery));
        using var key = FloatIO.Read(context.Input(LinearAttentionOperator.InputKey));
        using var value = FloatIO.Read(context.Input(LinearAttentionOperator.InputValue));
        using var decay = shapes.Gate != GateLayout.None ? FloatIO.Read(context.Input(LinearAttentionOperator.InputDecay)) : default;
        using var beta = shapes.Beta != BetaLayout.None ? FloatIO.Read(context.Input(LinearAttentionOperator.InputBeta)) : default;
        using var output = FloatIO.Writable(y);
        var job = new LinearAttentionCpu.Job
        {
            QueryHeads = a.QueryHeads,
            KvHeads = a.KvHeads,
            FeatureMap = a.FeatureMap,
            Rule = a.UpdateRule,
            Normalize = a.Normalize,
            Epsilon = a.Epsilon,
            Scale = a.ScaleFor(dk),
            Gamma = a.Decay,
            Shapes = shapes,
            Query = query.Data,
            Key = key.Data,
            Value = value.Data,
            Decay = decay.Data,
            Beta = beta.Data,
            PastState = shapes.HasPastState ? (float*)context.Input(LinearAttentionOperator.InputPastState).Data : null,
            PastNormalizer = shapes.HasPastNormalizer ? (float*)context.Input(LinearAttentionOperator.InputPastNormalizer).Data : null,
            Output = output.Data,
            State = (float*)state.Data,
            Normalizer = (float*)normalizer.Data,
        };
        LinearAttentionCpu.Run(context, ref job);
        FloatIO.Commit(output, y);
    }
}
