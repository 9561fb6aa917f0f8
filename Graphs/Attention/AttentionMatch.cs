using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Attention;

/// <summary>Where the key enters the scores: already [B, H, T, d], or [B, T, H, d] transposed on the way.</summary>
public enum KeyLayout
{
    Bhsd,
    Bshd,
}

/// <summary>
/// One softmax attention found in a graph, reduced to what a replacement needs: query, key and value as
/// [batch, heads, sequence, head_dim] values (key possibly [batch, sequence, heads, head_dim]), the value the
/// attention output replaces, the score scale, and the masking. Key and value are the tensors before any
/// repeat of grouped KV heads, so KvHeads is the model's real KV head count.
/// </summary>
public sealed record AttentionMatch(
    string Pattern,
    GraphNode Anchor,
    string Query,
    string Key,
    KeyLayout KeyLayout,
    string Value,
    string Output,
    double? Scale,
    bool Causal,
    string Mask,
    int QueryHeads,
    int KvHeads,
    int HeadDim,
    int ValueHeadDim)
{
    /// <summary>1/sqrt(head_dim) unless the model scales otherwise.</summary>
    public double EffectiveScale => Scale ?? 1.0 / Math.Sqrt(HeadDim);

    public string Describe() =>
        $"{Pattern}: {QueryHeads} query heads, {KvHeads} KV heads, head dim {HeadDim}" +
        (ValueHeadDim != HeadDim ? $" (value {ValueHeadDim})" : "") +
        $", scale {EffectiveScale:G6}, {(Causal ? "causal" : "not causal")}, mask: {Mask}";
}

/// <summary>A place that looked like attention but could not be used, and why.</summary>
public sealed record AttentionMiss(string Pattern, GraphNode Anchor, string Reason);
