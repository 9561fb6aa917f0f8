namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// A learned Hedgehog feature map (Zhang et al. 2024) for a set of heads: phi_h(x) = [softmax(x W_h + b_h),
/// softmax(-(x W_h + b_h))], the softmaxes over the <see cref="Projections"/> outputs, so 2 * Projections features,
/// all positive. Weight is [heads, head_dim, projections], bias [heads, projections]; a swap writes both as
/// initializers.
/// </summary>
public sealed record FeatureProjection
{
    public FeatureProjection(int heads, int headDim, int projections, float[] weight, float[] bias)
    {
        if (heads <= 0 || headDim <= 0 || projections <= 0) throw new ArgumentException($"a feature map needs positive heads, head dim and projections, got {heads}, {headDim}, {projections}");
        if (weight.Length != (long)heads * headDim * projections) throw new ArgumentException($"feature map weight holds {weight.Length} values, expected {heads} x {headDim} x {projections}");
        if (bias.Length != (long)heads * projections) throw new ArgumentException($"feature map bias holds {bias.Length} values, expected {heads} x {projections}");
        if (weight.Any(w => !float.IsFinite(w)) || bias.Any(b => !float.IsFinite(b))) throw new ArgumentException("feature map weights must be finite");
        (Heads, HeadDim, Projections, Weight, Bias) = (heads, headDim, projections, weight, bias);
    }

    public int Heads { get; }

    public int HeadDim { get; }

    public int Projections { get; }

    public float[] Weight { get; }

    public float[] Bias { get; }

    public int Features => 2 * Projections;

    /// <summary>phi of head <paramref name="head"/> at <paramref name="x"/> (HeadDim values) into <paramref name="phi"/> (Features values).</summary>
    public void Apply(int head, ReadOnlySpan<float> x, Span<float> phi)
    {
        var m = Projections;
        var u = phi[..m];
        for (var j = 0; j < m; j++)
        {
            var s = Bias[head * m + j];
            for (var i = 0; i < HeadDim; i++) s += x[i] * Weight[(head * HeadDim + i) * m + j];
            u[j] = s;
        }
        var negative = phi[m..];
        for (var j = 0; j < m; j++) negative[j] = -u[j];
        Softmax(u);
        Softmax(negative);
    }

    /// <summary>The map's softmax, in place (also what the fitting differentiates).</summary>
    public static void Softmax(Span<float> x)
    {
        var max = float.NegativeInfinity;
        foreach (var v in x) max = MathF.Max(max, v);
        var sum = 0f;
        for (var i = 0; i < x.Length; i++)
        {
            x[i] = MathF.Exp(x[i] - max);
            sum += x[i];
        }
        for (var i = 0; i < x.Length; i++) x[i] /= sum;
    }

    /// <summary>Records compare arrays by reference; two maps with the same numbers are the same map.</summary>
    public bool Equals(FeatureProjection? other) => other is not null && other.Heads == Heads && other.HeadDim == HeadDim
        && other.Projections == Projections && other.Weight.AsSpan().SequenceEqual(Weight) && other.Bias.AsSpan().SequenceEqual(Bias);

    public override int GetHashCode() => HashCode.Combine(Heads, HeadDim, Projections, Weight.Length > 0 ? Weight[0] : 0f);
}
