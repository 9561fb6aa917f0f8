namespace OnnxAttention.Operators.HybridAttention;

/// <summary>How the tokens that have left the sliding window are remembered.</summary>
public enum CompressKind
{
    /// <summary>Normalised linear attention over the evicted tokens, phi = elu + 1, mixed in by a count gate.</summary>
    Linear,
    /// <summary>The mean evicted key and value, as one extra slot of the window's softmax.</summary>
    Mean,
    /// <summary>
    /// LoLCATs' window + linear attention: a linear memory of the evicted tokens on learned Hedgehog features (weights
    /// given as inputs), sharing one softmax normaliser with the window, weighted by a learned per-head mix.
    /// </summary>
    Hedgehog,
}

public static class CompressKinds
{
    /// <summary>Attribute spellings, as written in a model's <c>compress</c> attribute.</summary>
    public static IReadOnlyDictionary<string, CompressKind> ByName { get; } = new Dictionary<string, CompressKind>
    {
        ["linear"] = CompressKind.Linear,
        ["mean"] = CompressKind.Mean,
        ["hedgehog"] = CompressKind.Hedgehog,
    };

    public static string NameOf(CompressKind kind) => ByName.First(kv => kv.Value == kind).Key;
}
