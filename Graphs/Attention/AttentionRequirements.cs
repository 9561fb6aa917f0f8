namespace OnnxAttention.Graphs.Attention;

/// <summary>What a replacement can take on, and the message when it cannot.</summary>
public static class AttentionRequirements
{
    /// <summary>
    /// Fixed-size memories (linear attention, windows, summaries) replace causal self-attention whose only mask is
    /// the causal one: they keep no per-key data, so a padding mask, a free-form mask, the model's own KV cache or
    /// a scores output has nowhere to go. Null when <paramref name="m"/> qualifies, else the reason.
    /// </summary>
    public static string? CausalMemory(AttentionMatch m)
    {
        if (m.OwnCache is { } cache)
        {
            return $"the attention already keeps its own KV cache ('{cache}'), which a fixed-size memory does not replace";
        }
        if (m.NonPadKvSeqLen is { } nonPad)
        {
            return $"the attention takes per-row key lengths from '{nonPad}' (padding), which the fixed-size memories cannot keep";
        }
        if (m.QueryLength is { } q && m.KeyLength is { } k && q != k)
        {
            return $"{q} queries attend to {k} keys: not self-attention over one sequence, which a recurrent memory needs";
        }
        if (m.MaskValue is not null)
        {
            return m.MaskReads is { } input
                ? $"the mask reads the values of graph input '{input}' (a padding mask), which the fixed-size memories cannot keep"
                : $"the mask ({m.Mask}) is not plain causal, which the fixed-size memories cannot reproduce";
        }
        if (!m.Causal)
        {
            return "no causal mask: bidirectional attention cannot be replaced by a causal memory";
        }
        if (m.ScoresOutput is { } scores)
        {
            return $"the model reads the attention scores ('{scores}'), which a fixed-size memory does not compute";
        }
        return null;
    }

    /// <summary>
    /// For replacements written before the ONNX Attention operator was matched: query, value and output per head
    /// ([batch, heads, seq, dim]), as the MatMul/Softmax pattern gives them. Null when so.
    /// </summary>
    public static string? PerHeadLayouts(AttentionMatch m) =>
        m.QueryLayout != KeyLayout.Bhsd || m.ValueLayout != KeyLayout.Bhsd || m.OutputLayout != KeyLayout.Bhsd
            ? "the attention works on packed [batch, seq, heads*dim] tensors, which this rule does not take"
            : null;

    /// <summary>Softmax-based memories (windows, segments, summaries) apply no softcap to their scores. Null when none is needed.</summary>
    public static string? NoSoftcap(AttentionMatch m) =>
        m.Softcap > 0 ? $"the scores are soft-capped ({m.Softcap:G6}), which this rule does not apply" : null;
}
