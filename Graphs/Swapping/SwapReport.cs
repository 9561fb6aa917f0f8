using OnnxAttention.Graphs.Attention;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>What a swap changed: per rule, a count; per layer, what was replaced; and the state it added.</summary>
public sealed record SwapReport(
    AttentionRule Rule,
    IReadOnlyList<AttentionMatch> Replaced,
    IReadOnlyList<AttentionMiss> Skipped,
    IReadOnlyList<StateTensor> State,
    IReadOnlyDictionary<string, int> RuleCounts,
    int RemovedNodes,
    bool HasPositionInput)
{
    /// <summary>Set when the swap raised the model's default-domain opset (the softmax rule needs Attention-23).</summary>
    public string? OpsetChange { get; init; }

    /// <summary>Inputs and outputs of the model that were removed or rewired (a KV cache that became state, positions fed from the past length).</summary>
    public IReadOnlyList<string> InterfaceChanges { get; init; } = [];

    /// <summary>
    /// Whether the rows of a batch may be at different positions: the position input may then be [batch], and
    /// nothing in the model reads one position for all rows (see <see cref="PositionOffset"/>). False for a growing
    /// KV cache, whose length is the batch's.
    /// </summary>
    public bool PositionsPerRow { get; init; }
}
