namespace OnnxAttention.Graphs.Attention;

/// <summary>
/// A KV cache a model keeps as graph inputs and outputs: past keys and values come in, are joined with the new
/// tokens' keys and values along the sequence axis, and the joined tensors go out as the presents (Hugging Face
/// and optimum exports, attention operators with past/present). <see cref="PastLayout"/> says where the sequence
/// axis is: [batch, kv_heads, past, d] (Bhsd) or [batch, past, kv_heads, d] (Bshd).
/// </summary>
public sealed record KvCache(string PastKey, string PastValue, string PresentKey, string PresentValue, KeyLayout PastLayout)
{
    /// <summary>The axis of the past tensors that counts cached tokens.</summary>
    public int SequenceAxis => PastLayout == KeyLayout.Bshd ? 1 : 2;
}

/// <summary>
/// A bias added to the projected query, key and value before attention: one vector [Dq + Dk + Dv] whose first
/// <see cref="QueryWidth"/> entries go to the query, the next <see cref="KeyWidth"/> to the key, the rest to the value.
/// </summary>
public sealed record QkvBias(string Value, int QueryWidth, int KeyWidth, int ValueWidth);

/// <summary>
/// A rotary embedding applied to query and key at positions past + 0 .. past + S - 1, with tables cos/sin
/// [max_position, RotaryDim / 2]; <see cref="Interleaved"/> pairs (x0, x1), (x2, x3)... instead of the two halves.
/// RotaryDim 0: the whole head.
/// </summary>
public sealed record RotarySpec(string CosCache, string SinCache, bool Interleaved, int RotaryDim);
