using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// Small models around ONNX Runtime's contrib attention operators, on graph inputs q, k, v [batch, seq, heads*dim]
/// and output y. Lengths a GroupQueryAttention needs (seqlens_k, total_sequence_length) are computed from shapes,
/// as a model that never pads would; the own-cache forms take past_k/past_v [batch, kv_heads, past, dim] and give
/// present_k/present_v.
/// </summary>
internal static class ContribAttentionModels
{
    public const string Ms = "com.microsoft";
    public const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    public const TensorProto.Types.DataType I32 = TensorProto.Types.DataType.Int32;
    public const TensorProto.Types.DataType I64 = TensorProto.Types.DataType.Int64;
    public const int MaxPosition = 64;

    public sealed record Gqa(int Batch = 2, int Heads = 4, int KvHeads = 2, int HeadDim = 8)
    {
        public bool Rotary { get; init; }

        public bool Interleaved { get; init; }

        public int LocalWindowSize { get; init; } = -1;

        public float Softcap { get; init; }

        public bool OwnCache { get; init; }

        /// <summary>seqlens_k read from a graph input (an attention mask's row lengths) instead of computed from shapes.</summary>
        public bool SeqlensInput { get; init; }

        public int QWidth => Heads * HeadDim;

        public int KvWidth => KvHeads * HeadDim;
    }

    public static ModelProto GroupQueryAttention(Gqa c)
    {
        var b = new ModelBuilder(defaultOpset: 18).Opset(Ms, 1)
            .Input("q", F, c.Batch, "s", c.QWidth).Input("k", F, c.Batch, "s", c.KvWidth).Input("v", F, c.Batch, "s", c.KvWidth)
            .Initializer(Tensors.Int64("one", [1], 1)).Initializer(Tensors.Int64("axis0", [0], 1));
        if (c.OwnCache) b.Input("past_k", F, c.Batch, c.KvHeads, "p", c.HeadDim).Input("past_v", F, c.Batch, c.KvHeads, "p", c.HeadDim);
        b.Node("Shape", ["q"], ["batch"], attributes: [Attr.Int("start", 0), Attr.Int("end", 1)])
            .Node("Shape", ["q"], ["new_len"], attributes: [Attr.Int("start", 1), Attr.Int("end", 2)]);
        if (c.OwnCache)
        {
            b.Node("Shape", ["past_k"], ["past_len"], attributes: [Attr.Int("start", 2), Attr.Int("end", 3)])
                .Node("Add", ["past_len", "new_len"], ["total_len"]);
        }
        else
        {
            b.Node("Identity", ["new_len"], ["total_len"]);
        }
        b.Node("Squeeze", ["total_len", "axis0"], ["total_scalar"]).Node("Cast", ["total_scalar"], ["total_i32"], attributes: Attr.Int("to", (int)I32));
        if (c.SeqlensInput)
        {
            b.Input("seqlens_k", I32, c.Batch);
        }
        else
        {
            b.Node("Sub", ["total_len", "one"], ["last"]).Node("Expand", ["last", "batch"], ["last_rows"])
                .Node("Cast", ["last_rows"], ["seqlens_k"], attributes: Attr.Int("to", (int)I32));
        }
        var attributes = new List<AttributeProto> { Attr.Int("num_heads", c.Heads), Attr.Int("kv_num_heads", c.KvHeads), Attr.Int("local_window_size", c.LocalWindowSize) };
        if (c.Softcap > 0) attributes.Add(Attr.Float("softcap", c.Softcap));
        string cos = "", sin = "";
        if (c.Rotary)
        {
            (cos, sin) = ("cos_cache", "sin_cache");
            var (cosTable, sinTable) = RotaryTables(c.HeadDim);
            b.Initializer(Tensors.Float(cos, cosTable, MaxPosition, c.HeadDim / 2)).Initializer(Tensors.Float(sin, sinTable, MaxPosition, c.HeadDim / 2));
            attributes.AddRange([Attr.Int("do_rotary", 1), Attr.Int("rotary_interleaved", c.Interleaved ? 1 : 0)]);
        }
        string[] outputs = c.OwnCache ? ["y", "present_k", "present_v"] : ["y"];
        b.Node("GroupQueryAttention", ["q", "k", "v", c.OwnCache ? "past_k" : "", c.OwnCache ? "past_v" : "", "seqlens_k", "total_i32", cos, sin],
            outputs, domain: Ms, name: "gqa", attributes: [.. attributes]);
        b.Output("y", F, c.Batch, "s", c.QWidth);
        if (c.OwnCache) b.Output("present_k", F, c.Batch, c.KvHeads, "t", c.HeadDim).Output("present_v", F, c.Batch, c.KvHeads, "t", c.HeadDim);
        return b.Build();
    }

    /// <summary>cos/sin of p / 10000^(2i/d), [MaxPosition, d/2].</summary>
    public static (float[] Cos, float[] Sin) RotaryTables(int headDim)
    {
        var half = headDim / 2;
        var cos = new float[MaxPosition * half];
        var sin = new float[MaxPosition * half];
        for (var p = 0; p < MaxPosition; p++)
            for (var i = 0; i < half; i++)
            {
                var angle = p / Math.Pow(10000, 2.0 * i / headDim);
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        return (cos, sin);
    }

    public sealed record Mha(int Batch = 2, int Heads = 3, int HeadDim = 6, int ValueHeadDim = 4)
    {
        public bool Causal { get; init; } = true;

        public bool Bias { get; init; }

        public bool OwnCache { get; init; }

        public bool PaddingMask { get; init; }

        public int QWidth => Heads * HeadDim;

        public int VWidth => Heads * ValueHeadDim;
    }

    public static ModelProto MultiHeadAttention(Mha c)
    {
        var b = new ModelBuilder(defaultOpset: 18).Opset(Ms, 1)
            .Input("q", F, c.Batch, "s", c.QWidth).Input("k", F, c.Batch, "s", c.QWidth).Input("v", F, c.Batch, "s", c.VWidth);
        if (c.Bias) b.Initializer(Tensors.Float("qkv_bias", BiasValues(c), 2 * c.QWidth + c.VWidth));
        if (c.OwnCache) b.Input("past_k", F, c.Batch, c.Heads, "p", c.HeadDim).Input("past_v", F, c.Batch, c.Heads, "p", c.ValueHeadDim);
        if (c.PaddingMask) b.Input("key_padding_mask", I32, c.Batch, "s");
        b.Node("MultiHeadAttention", ["q", "k", "v", c.Bias ? "qkv_bias" : "", c.PaddingMask ? "key_padding_mask" : "", "",
                c.OwnCache ? "past_k" : "", c.OwnCache ? "past_v" : ""],
            c.OwnCache ? ["y", "present_k", "present_v"] : ["y"], domain: Ms, name: "mha",
            attributes: [Attr.Int("num_heads", c.Heads), Attr.Int("unidirectional", c.Causal ? 1 : 0)]);
        b.Output("y", F, c.Batch, "s", c.VWidth);
        if (c.OwnCache) b.Output("present_k", F, c.Batch, c.Heads, "t", c.HeadDim).Output("present_v", F, c.Batch, c.Heads, "t", c.ValueHeadDim);
        return b.Build();
    }

    public static float[] BiasValues(Mha c)
    {
        var values = new float[2 * c.QWidth + c.VWidth];
        for (var i = 0; i < values.Length; i++) values[i] = 0.05f * ((i * 7 % 11) - 5);
        return values;
    }
}
