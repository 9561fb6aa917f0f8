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

    /// <summary>The attention mask input the swapped model still reads (padding, [batch, past + seq]); null when it takes none.</summary>
    public string? PaddingInput { get; init; }

    /// <summary>
    /// Whether the exporter's runtime pads a row after its tokens (true: onnxruntime-genai, whose GroupQueryAttention
    /// reads the first seqlens_k + 1 keys of a row) or before them (false: Hugging Face generate, Optimum).
    /// </summary>
    public bool PadsOnTheRight { get; init; }

    /// <summary>Per replaced layer, in order: its rule (one of a per-layer rule's entries) and its state tensors.</summary>
    public IReadOnlyList<LayerSwap> Layers { get; init; } = [];

    /// <summary>Bytes of fixed-size state one sequence carries, over all layers.</summary>
    public long StateBytesPerSequence => Layers.Sum(l => l.StateBytesPerSequence);
}

/// <summary>What one layer became: its rule and the state it carries between calls.</summary>
public sealed record LayerSwap(AttentionRule Rule, IReadOnlyList<StateTensor> State)
{
    /// <summary>Bytes of fixed-size state per sequence (a growing KV cache is counted in <see cref="CacheBytesPerToken"/>).</summary>
    public long StateBytesPerSequence => State.Where(s => s.GrowingAxis is null).Sum(s => s.BytesPerRow(0));

    /// <summary>Bytes a growing state adds per token of a sequence; 0 for fixed-size state.</summary>
    public long CacheBytesPerToken => State.Where(s => s.GrowingAxis is not null).Sum(s => s.BytesPerRow(1));
}
