using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Attention;

/// <summary>
/// How a query, key, value or output tensor holds its heads: [batch, heads, sequence, dim], [batch, sequence,
/// heads, dim], or packed [batch, sequence, heads*dim] (the 3-D form of ONNX's Attention operator).
/// </summary>
public enum KeyLayout
{
    Bhsd,
    Bshd,
    Packed,
}

/// <summary>
/// One softmax attention found in a graph, reduced to what a replacement needs: query, key and value (key and
/// value before any repeat of grouped KV heads, so KvHeads is the model's real KV head count), the value the
/// attention output replaces, and the maths around the scores: scale, softcap, causal masking and any other mask.
/// <para>
/// The maths is y_i = sum_j softmax_j(softcap(scale * q_i . k_j) + mask_ij) v_j, where a causal attention also
/// removes keys j &gt; i (query i of a chunk sees the keys before the chunk and chunk positions 0..i).
/// </para>
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
    public KeyLayout QueryLayout { get; init; } = KeyLayout.Bhsd;

    public KeyLayout ValueLayout { get; init; } = KeyLayout.Bhsd;

    public KeyLayout OutputLayout { get; init; } = KeyLayout.Bhsd;

    /// <summary>c in softcap(x) = c * tanh(x / c), applied to the scaled scores before the mask; 0 = none.</summary>
    public double Softcap { get; init; }

    /// <summary>
    /// A mask beyond plain causal, as the model computes it: an additive float mask (or bool, true = attend, from
    /// an Attention operator's attn_mask) broadcastable to [batch, heads, q_len, kv_len]. Null when there is none.
    /// </summary>
    public string? MaskValue { get; init; }

    /// <summary>The graph input whose values <see cref="MaskValue"/> reads (a padding mask), if any.</summary>
    public string? MaskReads { get; init; }

    /// <summary>
    /// The graph input (an attention_mask [batch, past + seq], 1 = token, 0 = pad) whose zeros remove keys, when the
    /// mask was found to be exactly causal attention plus that padding (see MaskProbe). <see cref="MaskValue"/>,
    /// <see cref="MaskKeep"/> and <see cref="MaskFill"/> then compute that whole mask, causal part included.
    /// </summary>
    public string? KeyPadding { get; init; }

    /// <summary>
    /// Query, key and value arrive packed in one tensor [B, S, (Hq + 2 Hkv) d] (<see cref="Query"/>; Key and Value
    /// name it too): the swap splits it before anything else.
    /// </summary>
    public bool PackedQkv { get; init; }

    /// <summary>A mask applied as Where(keep, scores, fill) (GPT-2's causal bias buffer): the keep condition, with <see cref="MaskFill"/>.</summary>
    public string? MaskKeep { get; init; }

    public string? MaskFill { get; init; }

    /// <summary>
    /// Set when the attention keeps a KV cache of its own that cannot become the replacement's state (a past_key
    /// input without present outputs, a present output without past inputs, ...): it is left as it is.
    /// </summary>
    public string? OwnCache { get; init; }

    /// <summary>Why <see cref="OwnCache"/> cannot become state, for messages; null when there is no more to say.</summary>
    public string? OwnCacheWhy { get; init; }

    /// <summary>
    /// The model's KV cache of this attention, as graph inputs and outputs a swap turns into the replacement's state.
    /// <see cref="Key"/> and <see cref="Value"/> are then the new tokens' keys and values only.
    /// </summary>
    public KvCache? Cache { get; init; }

    /// <summary>A bias the attention adds to the projected query, key and value before attending (MultiHeadAttention's bias input).</summary>
    public QkvBias? Bias { get; init; }

    /// <summary>A rotary embedding the attention applies to query and key itself (GroupQueryAttention's do_rotary).</summary>
    public RotarySpec? Rotary { get; init; }

    /// <summary>Keys per query, the query's own included, of a causal local (sliding-window) attention; 0 = unbounded.</summary>
    public int LocalWindow { get; init; }

    /// <summary>
    /// Whether <see cref="KeyPadding"/> reaches the attention as row lengths (GroupQueryAttention's seqlens_k), which
    /// count a row's keys from its start: the exporter's runtime pads after a row's tokens.
    /// </summary>
    public bool PaddingFromRowLengths { get; init; }

    /// <summary>The graph input whose values give per-row key lengths (GroupQueryAttention's seqlens_k from an attention mask), if any.</summary>
    public string? KeyLengthsReads { get; init; }

    /// <summary>The opset-24 nonpad_kv_seqlen input of an Attention operator, if given.</summary>
    public string? NonPadKvSeqLen { get; init; }

    /// <summary>The Attention operator's qk_matmul_output when the model reads it, and the mode it was made with.</summary>
    public string? ScoresOutput { get; init; }

    public long ScoresOutputMode { get; init; }

    /// <summary>The Attention operator's softmax_precision attribute (0: the input type).</summary>
    public long SoftmaxPrecision { get; init; }

    /// <summary>Query and key sequence lengths when the model fixes them (they differ in cross-attention).</summary>
    public long? QueryLength { get; init; }

    public long? KeyLength { get; init; }

    /// <summary>The element type of query, key and value (what a KV cache of this attention holds).</summary>
    public TensorProto.Types.DataType ElementType { get; init; } = TensorProto.Types.DataType.Float;

    /// <summary>1/sqrt(head_dim) unless the model scales otherwise.</summary>
    public double EffectiveScale => Scale ?? 1.0 / Math.Sqrt(HeadDim);

    public string Describe() =>
        $"{Pattern}: {QueryHeads} query heads, {KvHeads} KV heads, head dim {HeadDim}" +
        (ValueHeadDim != HeadDim ? $" (value {ValueHeadDim})" : "") +
        $", scale {EffectiveScale:G6}" + (Softcap > 0 ? $", softcap {Softcap:G6}" : "") +
        $", {(Causal ? "causal" : "not causal")}, mask: {Mask}" +
        (Bias is not null ? $", q/k/v bias '{Bias.Value}'" : "") +
        (Rotary is not null ? $", rotary {(Rotary.Interleaved ? "interleaved " : "")}from '{Rotary.CosCache}'/'{Rotary.SinCache}'" : "") +
        (LocalWindow > 0 ? $", local window of {LocalWindow} keys" : "") +
        (KeyLengthsReads is not null ? $", key lengths from graph input '{KeyLengthsReads}'" : "") +
        (OwnCache is not null ? $", own KV cache '{OwnCache}'" + (OwnCacheWhy is null ? "" : $" (kept: {OwnCacheWhy})") : "") +
        (Cache is not null ? $", KV cache '{Cache.PastKey}'/'{Cache.PastValue}' -> '{Cache.PresentKey}'/'{Cache.PresentValue}' (can become state)" : "") +
        (ScoresOutput is not null ? $", scores output '{ScoresOutput}'" : "");
}

/// <summary>A place that looked like attention but could not be used, and why.</summary>
public sealed record AttentionMiss(string Pattern, GraphNode Anchor, string Reason);
