using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Writes a matched attention as ONNX's standard Attention operator with the same maths (scale, softcap,
/// is_causal, mask, grouped KV heads) plus a KV cache: past_key/past_value inputs [batch, kv_heads, past, d]
/// and present_key/present_value outputs [batch, kv_heads, past + new, d]. ORT aligns causal masking with a past
/// so query i of the new chunk sees past + i + 1 keys, which makes token-by-token runs equal whole-sequence ones.
/// 4-D inputs are used unless the query is packed ([batch, seq, heads*d], the operator's 3-D form).
/// </summary>
internal sealed class SoftmaxReplacement : IAttentionReplacement
{
    public const int Opset = 23;

    /// <summary>nonpad_kv_seqlen is an opset-24 input.</summary>
    public const int OpsetWithNonPad = 24;

    public string? Refusal(AttentionMatch m)
    {
        if (m.OwnCache is { } cache)
        {
            return $"the attention already keeps its own KV cache ('{cache}'); it is left as it is" + (m.OwnCacheWhy is { } why ? $" ({why})" : "");
        }
        if (m.LocalWindow > 0)
        {
            return $"the attention is a local window of {m.LocalWindow} keys, which ONNX's Attention with a growing cache does not restrict; window:{m.LocalWindow} reproduces it";
        }
        if (m.KeyLengthsReads is { } lengths)
        {
            return $"the attention takes per-row key lengths from the values of graph input '{lengths}' (padding), which this rule does not carry";
        }
        return AttentionRequirements.CacheWithoutDataMask(m);
    }

    public int RequiredOpset(AttentionMatch m) => m.NonPadKvSeqLen is null ? Opset : OpsetWithNonPad;

    public IReadOnlyList<StateTensor> Replace(Graph graph, AttentionMatch m, int layer, Dim batch)
    {
        var hint = $"layers.{layer}.attention";
        var target = m.QueryLayout == KeyLayout.Packed ? KeyLayout.Packed : KeyLayout.Bhsd;
        var q = Convert(graph, m.Query, m.QueryLayout, target, m.QueryHeads, m.HeadDim, hint + ".q");
        var k = Convert(graph, m.Key, m.KeyLayout, target, m.KvHeads, m.HeadDim, hint + ".k");
        var v = Convert(graph, m.Value, m.ValueLayout, target, m.KvHeads, m.ValueHeadDim, hint + ".v");
        var key = new StateTensor($"past_key.{layer}", $"present_key.{layer}", m.ElementType,
            [batch, m.KvHeads, StateTensor.PastLength, m.HeadDim], GrowingAxis: 2);
        var value = new StateTensor($"past_value.{layer}", $"present_value.{layer}", m.ElementType,
            [batch, m.KvHeads, StateTensor.PastLength, m.ValueHeadDim], GrowingAxis: 2);
        var y = graph.FreshName(hint + ".softmax");
        var scores = m.ScoresOutput is null ? null : graph.FreshName(hint + ".scores");

        var node = new NodeProto { OpType = "Attention", Name = hint + ".Attention" };
        node.Input.AddRange([q, k, v, m.MaskValue ?? "", key.Past, value.Past, m.NonPadKvSeqLen ?? ""]);
        while (node.Input[^1].Length == 0) node.Input.RemoveAt(node.Input.Count - 1);
        node.Output.AddRange([y, key.Present, value.Present]);
        if (scores is not null) node.Output.Add(scores);
        node.Attribute.Add(Attr.Int("is_causal", m.Causal ? 1 : 0));
        node.Attribute.Add(Attr.Float("scale", (float)m.EffectiveScale));
        if (m.Softcap > 0) node.Attribute.Add(Attr.Float("softcap", (float)m.Softcap));
        if (target == KeyLayout.Packed)
        {
            node.Attribute.Add(Attr.Int("q_num_heads", m.QueryHeads));
            node.Attribute.Add(Attr.Int("kv_num_heads", m.KvHeads));
        }
        if (scores is not null) node.Attribute.Add(Attr.Int("qk_matmul_output_mode", m.ScoresOutputMode));
        if (m.SoftmaxPrecision != 0) node.Attribute.Add(Attr.Int("softmax_precision", m.SoftmaxPrecision));
        graph.Add(node);

        graph.ReplaceUses(m.Output, Convert(graph, y, target, m.OutputLayout, m.QueryHeads, m.ValueHeadDim, hint + ".y"));
        if (scores is not null) graph.ReplaceUses(m.ScoresOutput!, scores);
        return [key, value];
    }

    private static string Convert(Graph g, string value, KeyLayout from, KeyLayout to, int heads, int headDim, string hint)
    {
        if (from == to) return value;
        return (from, to) switch
        {
            (KeyLayout.Bhsd, KeyLayout.Packed) or (KeyLayout.Bshd, KeyLayout.Packed) => PackedLayout.Pack(g, value, from, hint),
            (KeyLayout.Packed, KeyLayout.Bhsd) => PackedLayout.Unpack(g, value, heads, headDim, hint),
            (KeyLayout.Bshd, KeyLayout.Bhsd) => PackedLayout.Transpose(g, value, hint),
            _ => throw new GraphException($"no conversion from {from} to {to} layout for '{value}'"),
        };
    }
}
