using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>
/// compress=hedgehog's inputs: learned Hedgehog feature maps phi(x) = [softmax(x W + b), softmax(-(x W + b))] for
/// queries (one per query head) and keys (one per KV head), and the per-head mix alpha of the linear memory.
/// </summary>
internal static unsafe class HybridAttentionFeatures
{
    private static readonly int[] Inputs =
    [
        HybridAttentionOperator.InputFeatureQueryWeight, HybridAttentionOperator.InputFeatureQueryBias,
        HybridAttentionOperator.InputFeatureKeyWeight, HybridAttentionOperator.InputFeatureKeyBias, HybridAttentionOperator.InputMix,
    ];

    private static string Name(int input) => HybridAttentionContract.Contract.FurtherInputs(OrtElementType.Float)[input - HybridAttentionOperator.InputFeatureQueryWeight].Name;

    /// <summary>Every input present, float32 of its exact shape; on the host, finite weights and a finite, non-negative mix.</summary>
    public static void Require(in KernelContext context, HybridAttentionAttributes a, int headDim, bool valuesOnHost)
    {
        long hq = a.Heads.QueryHeads, hkv = a.Heads.KvHeads, m = a.Projections;
        Span<long> shape = stackalloc long[3];
        foreach (var input in Inputs)
        {
            if (!context.HasInput(input))
            {
                throw OrtException.InvalidArgument($"compress=hedgehog needs input {Name(input)}");
            }
            var expected = input switch
            {
                HybridAttentionOperator.InputFeatureQueryWeight => Set(shape, hq, headDim, m),
                HybridAttentionOperator.InputFeatureQueryBias => Set(shape, hq, m),
                HybridAttentionOperator.InputFeatureKeyWeight => Set(shape, hkv, headDim, m),
                HybridAttentionOperator.InputFeatureKeyBias => Set(shape, hkv, m),
                _ => Set(shape, hq),
            };
            var tensor = context.Input(input);
            if (!StateChecks.HasShape(tensor, OrtElementType.Float, expected))
            {
                StateChecks.RequireShape(tensor, Name(input), OrtElementType.Float, expected, Layout(input));
            }
            if (!valuesOnHost) continue;
            var values = tensor.AsReadOnlySpan<float>();
            for (var i = 0; i < values.Length; i++)
            {
                if (!float.IsFinite(values[i]) || (input == HybridAttentionOperator.InputMix && values[i] < 0f))
                {
                    throw OrtException.InvalidArgument($"{Name(input)}[{i}] is {values[i]}; " +
                        (input == HybridAttentionOperator.InputMix ? "the mix must be finite and non-negative" : "feature map weights must be finite"));
                }
            }
        }
    }

    /// <summary>The inputs belong to compress=hedgehog: given to another kind they would be silently ignored.</summary>
    public static void RefuseGiven(in KernelContext context, HybridAttentionAttributes a)
    {
        foreach (var input in Inputs)
        {
            if (context.HasInput(input))
            {
                throw OrtException.InvalidArgument($"input {Name(input)} is for compress=hedgehog only; this node has compress={CompressKinds.NameOf(a.Compress)}");
            }
        }
    }

    private static string Layout(int input) => input switch
    {
        HybridAttentionOperator.InputFeatureQueryWeight => "[q_num_heads, head_dim, projections]",
        HybridAttentionOperator.InputFeatureQueryBias => "[q_num_heads, projections]",
        HybridAttentionOperator.InputFeatureKeyWeight => "[kv_num_heads, head_dim, projections]",
        HybridAttentionOperator.InputFeatureKeyBias => "[kv_num_heads, projections]",
        _ => "[q_num_heads]",
    };

    private static ReadOnlySpan<long> Set(Span<long> shape, params ReadOnlySpan<long> dims)
    {
        dims.CopyTo(shape);
        return shape[..dims.Length];
    }

    /// <summary>phi of one head: u = x W_h + b_h (m values), then [softmax(u), softmax(-u)] into <paramref name="phi"/> (2m values).</summary>
    public static void Apply(float* weight, float* bias, int head, int headDim, int m, float* x, Span<float> phi)
    {
        var u = phi[..m];
        var w = weight + (long)head * headDim * m;
        new ReadOnlySpan<float>(bias + (long)head * m, m).CopyTo(u);
        for (var i = 0; i < headDim; i++)
        {
            var xi = x[i];
            var row = new ReadOnlySpan<float>(w + (long)i * m, m);
            for (var j = 0; j < m; j++) u[j] += xi * row[j];
        }
        var negative = phi[m..];
        for (var j = 0; j < m; j++) negative[j] = -u[j];
        Softmax(u);
        Softmax(negative);
    }

    private static void Softmax(Span<float> x)
    {
        var max = System.Numerics.Tensors.TensorPrimitives.Max(x);
        var sum = 0f;
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = MathF.Exp(x[i] - max);
            sum += x[i];
        }
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, 1f / sum, x);
    }
}
