namespace OnnxAttention.Graphs.Llama2c;

/// <summary>Which form of the llama2.c graph <see cref="LlamaGraphBuilder"/> writes.</summary>
public sealed record LlamaGraphOptions
{
    /// <summary>
    /// Inputs past_key_values.{l}.key/value [batch, kv_heads, past_sequence, head_size] joined (Concat on axis 2)
    /// with the new keys and values, outputs present.{l}.key/value; positions past + 0 .. S - 1 with the past length
    /// read from Shape(past_key_values.0.key)[2], and a causal mask [S, past + S].
    /// </summary>
    public bool KvCache { get; init; }

    /// <summary>An attention_mask input [batch, past + S] (1 attend, 0 padding) added to the causal mask (KV-cache form only).</summary>
    public bool AttentionMaskInput { get; init; }

    /// <summary>
    /// The past length read as Shape(attention_mask)[1] - S instead of from the past keys' shape; the mask's values
    /// are not read unless <see cref="AttentionMaskInput"/> (KV-cache form only).
    /// </summary>
    public bool PastLengthFromAttentionMask { get; init; }

    /// <summary>A position_ids input [batch, S] instead of positions computed from the past length (KV-cache form only).</summary>
    public bool PositionIdsInput { get; init; }
}
