using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// What an attention operator does to its inputs before attending, written out as plain nodes so every
/// replacement starts from the same query, key and value: MultiHeadAttention's q/k/v bias becomes three Adds,
/// GroupQueryAttention's do_rotary becomes com.microsoft.RotaryEmbedding on query and key at positions
/// past_sequence_length + 0 .. S - 1 (the positions the operator uses when rows are not padded).
/// </summary>
internal static class MatchPrelude
{
    public const string MicrosoftDomain = "com.microsoft";

    public static AttentionMatch Apply(Graph g, AttentionMatch m, int layer)
    {
        var hint = $"layers.{layer}.attention";
        if (m.PackedQkv)
        {
            var (qw, kw) = (m.QueryHeads * m.HeadDim, m.KvHeads * m.HeadDim);
            m = m with
            {
                Query = LastAxisSlice(g, m.Query, 0, qw, hint + ".q_unpacked"),
                Key = LastAxisSlice(g, m.Query, qw, qw + kw, hint + ".k_unpacked"),
                Value = LastAxisSlice(g, m.Query, qw + kw, qw + kw + m.KvHeads * m.ValueHeadDim, hint + ".v_unpacked"),
                PackedQkv = false,
            };
        }
        if (m.Bias is { } bias)
        {
            if (m.QueryLayout != KeyLayout.Packed || m.KeyLayout != KeyLayout.Packed || m.ValueLayout != KeyLayout.Packed)
            {
                throw new GraphException($"{m.Anchor}: a q/k/v bias is only applied to packed [batch, seq, heads*dim] tensors");
            }
            m = m with
            {
                Query = AddSlice(g, m.Query, bias.Value, 0, bias.QueryWidth, hint + ".q_bias"),
                Key = AddSlice(g, m.Key, bias.Value, bias.QueryWidth, bias.KeyWidth, hint + ".k_bias"),
                Value = AddSlice(g, m.Value, bias.Value, bias.QueryWidth + bias.KeyWidth, bias.ValueWidth, hint + ".v_bias"),
                Bias = null,
            };
        }
        if (m.Rotary is { } rotary)
        {
            if (m.QueryLayout != KeyLayout.Packed || m.KeyLayout != KeyLayout.Packed)
            {
                throw new GraphException($"{m.Anchor}: a rotary embedding is only applied to packed [batch, seq, heads*dim] tensors");
            }
            var positions = Positions(g, m.Query, hint);
            m = m with
            {
                Query = Rotate(g, m.Query, positions, rotary, m.QueryHeads, hint + ".q_rotary"),
                Key = Rotate(g, m.Key, positions, rotary, m.KvHeads, hint + ".k_rotary"),
                Rotary = null,
            };
        }
        return m;
    }

    private static string LastAxisSlice(Graph g, string x, int start, int end, string hint)
    {
        var starts = g.AddInt64Constant(hint + "_start", start);
        var ends = g.AddInt64Constant(hint + "_end", end);
        var axes = g.AddInt64Constant(hint + "_axes", -1);
        var part = g.FreshName(hint);
        g.Add(GraphEdits.Node("Slice", [x, starts, ends, axes], part));
        return part;
    }

    private static string AddSlice(Graph g, string x, string bias, int start, int width, string hint)
    {
        var starts = g.AddInt64Constant(hint + "_start", start);
        var ends = g.AddInt64Constant(hint + "_end", start + width);
        var part = g.FreshName(hint + "_part");
        g.Add(GraphEdits.Node("Slice", [bias, starts, ends], part));
        var sum = g.FreshName(hint);
        g.Add(GraphEdits.Node("Add", [x, part], sum));
        return sum;
    }

    /// <summary>int64 [B, S]: each row's past_sequence_length + 0 .. S - 1, S and B read from the packed query.</summary>
    private static string Positions(Graph g, string packedQuery, string hint)
    {
        var batch = g.FreshName(hint + ".batch");
        g.Add(GraphEdits.Node("Shape", [packedQuery], batch, Attr.Int("start", 0), Attr.Int("end", 1)));
        var length1 = g.FreshName(hint + ".length_1d");
        g.Add(GraphEdits.Node("Shape", [packedQuery], length1, Attr.Int("start", 1), Attr.Int("end", 2)));
        return PositionOffset.PerRowPositions(g, batch, length1, hint);
    }

    private static string Rotate(Graph g, string x, string positions, RotarySpec rotary, int heads, string hint)
    {
        var rotated = g.FreshName(hint);
        var node = GraphEdits.Node("RotaryEmbedding", [x, positions, rotary.CosCache, rotary.SinCache], rotated,
            Attr.Int("interleaved", rotary.Interleaved ? 1 : 0), Attr.Int("num_heads", heads));
        if (rotary.RotaryDim > 0) node.Attribute.Add(Attr.Int("rotary_embedding_dim", rotary.RotaryDim));
        node.Domain = MicrosoftDomain;
        g.Add(node);
        return rotated;
    }
}
