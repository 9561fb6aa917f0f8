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
            return $"the attention already keeps its own KV cache ('{cache}'), which a fixed-size memory does not replace" +
                (m.OwnCacheWhy is { } why ? $" (it cannot become state: {why})" : "");
        }
        if (m.KeyLengthsReads is { } lengths && m.KeyPadding is null)
        {
            return $"the attention takes per-row key lengths from the values of graph input '{lengths}' (padding), which the fixed-size memories cannot keep";
        }
        if (m.NonPadKvSeqLen is { } nonPad)
        {
            return $"the attention takes per-row key lengths from '{nonPad}' (padding), which the fixed-size memories cannot keep";
        }
        if (m.QueryLength is { } q && m.KeyLength is { } k && q != k)
        {
            return $"{q} queries attend to {k} keys: not self-attention over one sequence, which a recurrent memory needs";
        }
        if (m.MaskValue is not null && m.KeyPadding is null)
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
    /// A model that keeps its KV cache as graph inputs and outputs is run by a host that feeds only the ids, the
    /// past length and the state; a mask computed from the values of a graph input (an attention_mask with padding)
    /// would have nothing to read. Null when <paramref name="m"/> has no such cache or no such mask.
    /// </summary>
    public static string? CacheWithoutDataMask(AttentionMatch m) =>
        m.Cache is not null && m.KeyPadding is null && m.MaskReads is { } input
            ? $"the mask reads the values of graph input '{input}' (padding); a model whose KV cache becomes state is fed ids and the past length only, so padding cannot be carried"
            : null;

    /// <summary>Softmax-based memories (windows, segments, summaries) apply no softcap to their scores. Null when none is needed.</summary>
    public static string? NoSoftcap(AttentionMatch m) =>
        m.Softcap > 0 ? $"the scores are soft-capped ({m.Softcap:G6}), which this rule does not apply" : null;
}
