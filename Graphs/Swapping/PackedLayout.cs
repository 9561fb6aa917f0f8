using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// Converts between the exporters' per-head tensors ([B, H, T, d] or [B, T, H, d]) and our operators' packed
/// layout [B, T, H*d] with Transpose and Reshape nodes (0 in a Reshape shape copies that input dimension).
/// </summary>
internal static class PackedLayout
{
    public static string Pack(Graph g, string value, KeyLayout layout, string hint)
    {
        if (layout == KeyLayout.Packed) return value;
        var bshd = value;
        if (layout == KeyLayout.Bhsd)
        {
            bshd = g.FreshName(hint + "_bshd");
            g.Add(GraphEdits.Node("Transpose", [value], bshd, Attr.Ints("perm", 0, 2, 1, 3)));
        }
        var packed = g.FreshName(hint + "_packed");
        g.Add(GraphEdits.Node("Reshape", [bshd, g.AddInt64Constant(hint + "_pack_shape", 0, 0, -1)], packed));
        return packed;
    }

    /// <summary>[B, T, H*d] to [B, H, T, d].</summary>
    public static string Unpack(Graph g, string packed, int heads, int headDim, string hint)
    {
        var bshd = g.FreshName(hint + "_bshd");
        g.Add(GraphEdits.Node("Reshape", [packed, g.AddInt64Constant(hint + "_unpack_shape", 0, 0, heads, headDim)], bshd));
        var bhsd = g.FreshName(hint + "_bhsd");
        g.Add(GraphEdits.Node("Transpose", [bshd], bhsd, Attr.Ints("perm", 0, 2, 1, 3)));
        return bhsd;
    }

    /// <summary>Our operators' packed output [B, T, H*d] in the layout the model's attention gave its output.</summary>
    public static string ToLayout(Graph g, string packed, KeyLayout layout, int heads, int headDim, string hint)
    {
        switch (layout)
        {
            case KeyLayout.Packed:
                return packed;
            case KeyLayout.Bhsd:
                return Unpack(g, packed, heads, headDim, hint);
            default:
                var bshd = g.FreshName(hint + "_bshd");
                g.Add(GraphEdits.Node("Reshape", [packed, g.AddInt64Constant(hint + "_unpack_shape", 0, 0, heads, headDim)], bshd));
                return bshd;
        }
    }

    /// <summary>[B, T, H, d] to [B, H, T, d] (the same perm maps back).</summary>
    public static string Transpose(Graph g, string value, string hint)
    {
        var swapped = g.FreshName(hint + "_bhsd");
        g.Add(GraphEdits.Node("Transpose", [value], swapped, Attr.Ints("perm", 0, 2, 1, 3)));
        return swapped;
    }
}
