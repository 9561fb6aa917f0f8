using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Llama2c;

/// <summary>
/// Builds the ONNX graph of a llama2.c checkpoint in the form exporters write (opset 18 ops, softmax attention as
/// MatMul/Softmax with a causal mask computed from the ids' shape, repeat of grouped KV heads, value_info shapes),
/// ids [batch, sequence] -> logits [batch, sequence, vocab]. Being in exporter form, it goes through the same
/// attention swap as any exported model to run on constant-memory rules. With <see cref="LlamaGraphOptions.KvCache"/>
/// it is written as Hugging Face / optimum export decoders with past_key_values: each layer's keys and values are
/// joined onto past inputs and returned as present outputs, positions and the causal mask start at the past length.
/// <code>
///   ids ─ Gather(emb) ─ x ─┬─ RMSNorm ─ Q,K,V ─ RoPE(Q,K) ─ softmax attention ─ Wo ─ (+x) ─┬─ RMSNorm ─ SwiGLU ─ (+) ─ ... ─ RMSNorm ─ classifier
///   positions = Range(0, seq) ─ Gather(cos/sin tables)                                     │
/// </code>
/// </summary>
public static class LlamaGraphBuilder
{
    public const string InputIds = "input_ids";
    public const string Logits = "logits";
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    private const TensorProto.Types.DataType I64 = TensorProto.Types.DataType.Int64;

    /// <summary>Names of the KV-cache form's inputs and outputs (Hugging Face / optimum spelling).</summary>
    public static string PastKey(int layer) => $"past_key_values.{layer}.key";

    public static string PastValue(int layer) => $"past_key_values.{layer}.value";

    public static string PresentKey(int layer) => $"present.{layer}.key";

    public static string PresentValue(int layer) => $"present.{layer}.value";

    public const string AttentionMask = "attention_mask", PositionIds = "position_ids";

    public static ModelProto Build(Llama2cCheckpoint w) => Build(w, new LlamaGraphOptions());

    public static ModelProto Build(Llama2cCheckpoint w, LlamaGraphOptions options)
    {
        var maskInput = options.AttentionMaskInput || options.PastLengthFromAttentionMask;
        if ((maskInput || options.PositionIdsInput) && !options.KvCache)
        {
            throw new ArgumentException("attention_mask and position_ids inputs are only written in the KV-cache form");
        }
        var c = w.Config;
        int d = c.Dim, hs = c.HeadSize, half = hs / 2, group = c.Heads / c.KvHeads;
        var b = new ModelBuilder("llama2c", defaultOpset: 18);
        var n = 0;
        string Op(string op, string[] inputs, string hint, params AttributeProto[] attributes)
        {
            var output = $"{hint}_{n++}";
            b.Node(op, inputs, [output], name: output, attributes: attributes);
            return output;
        }
        string Const(string name, float[] values, params long[] dims)
        {
            b.Initializer(Tensors.Float(name, values, dims));
            return name;
        }
        string Ints(string name, params long[] values)
        {
            b.Initializer(Tensors.Int64(name, values, values.Length));
            return name;
        }
        string Scalar(string name, long value)
        {
            b.Initializer(Tensors.Int64(name, [value]));
            return name;
        }

        b.Input(InputIds, I64, "batch", "sequence");
        if (options.KvCache)
        {
            if (maskInput) b.Input(AttentionMask, I64, "batch", "total_sequence");
            if (options.PositionIdsInput) b.Input(PositionIds, I64, "batch", "sequence");
            for (var l = 0; l < c.Layers; l++)
            {
                b.Input(PastKey(l), F, "batch", c.KvHeads, "past_sequence", hs).Input(PastValue(l), F, "batch", c.KvHeads, "past_sequence", hs);
            }
        }
        Const("rms_eps", [(float)LlamaReferenceForward.RmsEpsilon]);
        Const("attn_scale", [1f / MathF.Sqrt(hs)]);
        Const("neg_inf", [float.NegativeInfinity]);
        Const("zero_f", [0f]);
        Ints("axes_last", -1);
        Ints("axes_0", 0);
        Ints("axes_1", 1);
        Ints("axes_2", 2);
        Ints("axes_0_2_4", 0, 2, 4);
        Scalar("zero", 0);
        Scalar("one", 1);

        // Positions and the causal mask come from the ids' shape only; in the KV-cache form, from the past length
        // (read from the shape of layer 0's past keys, as Hugging Face exports do) plus the ids' length, or from inputs.
        var seqLen1D = Op("Shape", [InputIds], "seq_len_1d", Attr.Int("start", 1), Attr.Int("end", 2));
        var seqLen = Op("Squeeze", [seqLen1D, "axes_0"], "seq_len");
        var pastLen = !options.KvCache ? "zero"
            : options.PastLengthFromAttentionMask
                ? Op("Sub", [Op("Squeeze", [Op("Shape", [AttentionMask], "mask_len_1d", Attr.Int("start", 1), Attr.Int("end", 2)), "axes_0"], "mask_len"), seqLen], "past_len")
                : Op("Squeeze", [Op("Shape", [PastKey(0)], "past_len_1d", Attr.Int("start", 2), Attr.Int("end", 3)), "axes_0"], "past_len");
        var totalLen = options.KvCache ? Op("Add", [pastLen, seqLen], "total_len") : seqLen;
        var positions = options.PositionIdsInput ? PositionIds : Op("Range", [pastLen, totalLen, "one"], "positions");
        // Positions [S] broadcast over the batch; a position_ids input [B, S] has a row per batch entry.
        var (angleAxis, tableAxes) = options.PositionIdsInput ? ("axes_last", "axes_2_4") : ("axes_1", "axes_0_2_4");
        if (options.PositionIdsInput) Ints("axes_2_4", 2, 4);
        string cosTable, sinTable;
        if (RopeTheta(w) is { } theta)
        {
            // The stored tables follow the standard formula: compute angles from positions, so the context is not
            // limited to the checkpoint's max_seq_len (state-based attention can go far beyond it).
            var inverse = Enumerable.Range(0, half).Select(i => (float)(1.0 / Math.Pow(theta, 2.0 * i / hs))).ToArray();
            var angles = Op("Mul", [Op("Unsqueeze", [Op("Cast", [positions], "positions_f", Attr.Int("to", (int)F)), angleAxis], "positions_col"),
                Const("rope_inverse_frequencies", inverse, half)], "rope_angles");
            cosTable = Op("Cos", [angles], "rope_cos");
            sinTable = Op("Sin", [angles], "rope_sin");
        }
        else
        {
            // Non-standard tables: use them as stored; positions past max_seq_len then fail with ORT's index error.
            Const("rope_cos_table", w.FreqCisReal, c.MaxSequence, half);
            Const("rope_sin_table", w.FreqCisImag, c.MaxSequence, half);
            cosTable = Op("Gather", ["rope_cos_table", positions], "rope_cos");
            sinTable = Op("Gather", ["rope_sin_table", positions], "rope_sin");
        }
        var cos = Op("Unsqueeze", [cosTable, tableAxes], "rope_cos_5d");
        var sin = Op("Unsqueeze", [sinTable, tableAxes], "rope_sin_5d");
        // Query i (at position past + i) sees keys 0 .. past + i: a [S, past + S] mask.
        var queryPositions = Op("Range", [pastLen, totalLen, "one"], "mask_positions");
        var keyPositions = options.KvCache ? Op("Range", ["zero", totalLen, "one"], "mask_key_positions") : queryPositions;
        var later = Op("Greater", [Op("Unsqueeze", [keyPositions, "axes_0"], "mask_cols"), Op("Unsqueeze", [queryPositions, "axes_1"], "mask_rows")], "mask_later");
        var causalMask = Op("Where", [later, "neg_inf", "zero_f"], "causal_mask");
        if (options.AttentionMaskInput)
        {
            // Padding: keys whose attention_mask entry is 0 are removed for every query, [B, 1, 1, past + S].
            Ints("axes_1_2", 1, 2);
            b.Initializer(Tensors.Int64("zero_mask", [0]));
            var padded = Op("Where", [Op("Equal", [AttentionMask, "zero_mask"], "mask_padded"), "neg_inf", "zero_f"], "padding_mask");
            causalMask = Op("Add", [causalMask, Op("Unsqueeze", [padded, "axes_1_2"], "padding_mask_4d")], "causal_padding_mask");
        }

        b.Initializer(Tensors.Float("tok_embeddings", w.TokenEmbedding, c.Vocab, d));
        var x = Op("Gather", ["tok_embeddings", InputIds], "embedding");

        string RmsNorm(string input, float[] weight, string name)
        {
            var ms = Op("ReduceMean", [Op("Mul", [input, input], name + "_sq"), "axes_last"], name + "_ms", Attr.Int("keepdims", 1));
            var inv = Op("Reciprocal", [Op("Sqrt", [Op("Add", [ms, "rms_eps"], name + "_eps")], name + "_rms")], name + "_inv");
            return Op("Mul", [Op("Mul", [input, inv], name + "_normed"), Const(name + ".weight", weight, weight.Length)], name);
        }
        string Linear(string input, float[] weightOutIn, int outDim, int inDim, string name)
        {
            b.Initializer(Tensors.Float(name + ".weight", Transpose(weightOutIn, outDim, inDim), inDim, outDim));
            return Op("MatMul", [input, name + ".weight"], name);
        }
        string Rope(string heads4d, int headCount, string name)
        {
            var pairs = Op("Reshape", [heads4d, Ints(name + "_pairs_shape", 0, 0, headCount, half, 2)], name + "_pairs");
            var even = Op("Slice", [pairs, Ints(name + "_s0", 0), Ints(name + "_e0", 1), "axes_last"], name + "_even");
            var odd = Op("Slice", [pairs, Ints(name + "_s1", 1), Ints(name + "_e1", 2), "axes_last"], name + "_odd");
            var rotatedEven = Op("Sub", [Op("Mul", [even, cos], name + "_ec"), Op("Mul", [odd, sin], name + "_os")], name + "_re");
            var rotatedOdd = Op("Add", [Op("Mul", [even, sin], name + "_es"), Op("Mul", [odd, cos], name + "_oc")], name + "_ro");
            var joined = Op("Concat", [rotatedEven, rotatedOdd], name + "_joined", Attr.Int("axis", -1));
            return Op("Reshape", [joined, Ints(name + "_back_shape", 0, 0, headCount, hs)], name + "_rot");
        }
        string ToHeads(string bshd, int headCount, string name)
        {
            var bhsd = Op("Transpose", [bshd], name, Attr.Ints("perm", 0, 2, 1, 3));
            b.ValueShape(bhsd, F, "batch", headCount, "sequence", hs);
            return bhsd;
        }
        string RepeatKv(string kv, string name)
        {
            if (group == 1) return kv;
            var unsqueezed = Op("Unsqueeze", [kv, "axes_2"], name + "_unsqueezed");
            var expanded = Op("Expand", [unsqueezed, Ints(name + "_expand", 1, 1, group, 1, 1)], name + "_expanded");
            return Op("Reshape", [expanded, Ints(name + "_shape", 0, c.Heads, -1, hs)], name);
        }

        for (var l = 0; l < c.Layers; l++)
        {
            var p = $"layers.{l}";
            var h = RmsNorm(x, w.AttentionNorm[l], p + ".attention_norm");
            var q = Op("Reshape", [Linear(h, w.Wq[l], d, d, p + ".wq"), Ints(p + ".q_shape", 0, 0, c.Heads, hs)], p + ".q_heads");
            var k = Op("Reshape", [Linear(h, w.Wk[l], c.KvDim, d, p + ".wk"), Ints(p + ".k_shape", 0, 0, c.KvHeads, hs)], p + ".k_heads");
            var v = Op("Reshape", [Linear(h, w.Wv[l], c.KvDim, d, p + ".wv"), Ints(p + ".v_shape", 0, 0, c.KvHeads, hs)], p + ".v_heads");
            var qh = ToHeads(Rope(q, c.Heads, p + ".q_rope"), c.Heads, p + ".q");
            var kh = ToHeads(Rope(k, c.KvHeads, p + ".k_rope"), c.KvHeads, p + ".k");
            var vh = ToHeads(v, c.KvHeads, p + ".v");
            if (options.KvCache)
            {
                // The cache: past ++ new along the sequence axis, returned as the presents for the next call.
                b.Node("Concat", [PastKey(l), kh], [PresentKey(l)], name: p + ".key_cache", attributes: Attr.Int("axis", 2));
                b.Node("Concat", [PastValue(l), vh], [PresentValue(l)], name: p + ".value_cache", attributes: Attr.Int("axis", 2));
                (kh, vh) = (PresentKey(l), PresentValue(l));
            }
            var kt = Op("Transpose", [RepeatKv(kh, p + ".k_repeat")], p + ".k_t", Attr.Ints("perm", 0, 1, 3, 2));
            var scores = Op("Mul", [Op("MatMul", [qh, kt], p + ".qk"), "attn_scale"], p + ".scores");
            var probabilities = Op("Softmax", [Op("Add", [scores, causalMask], p + ".masked")], p + ".softmax", Attr.Int("axis", -1));
            var attention = Op("MatMul", [probabilities, RepeatKv(vh, p + ".v_repeat")], p + ".attention");
            var merged = Op("Reshape", [Op("Transpose", [attention], p + ".attention_bshd", Attr.Ints("perm", 0, 2, 1, 3)), Ints(p + ".merge_shape", 0, 0, d)], p + ".attention_merged");
            x = Op("Add", [x, Linear(merged, w.Wo[l], d, d, p + ".wo")], p + ".attention_residual");

            var h2 = RmsNorm(x, w.FfnNorm[l], p + ".ffn_norm");
            var gate = Linear(h2, w.W1[l], c.HiddenDim, d, p + ".w1");
            var silu = Op("Mul", [gate, Op("Sigmoid", [gate], p + ".gate_sigmoid")], p + ".silu");
            var up = Linear(h2, w.W3[l], c.HiddenDim, d, p + ".w3");
            x = Op("Add", [x, Linear(Op("Mul", [silu, up], p + ".swiglu"), w.W2[l], d, c.HiddenDim, p + ".w2")], p + ".ffn_residual");
        }
        var final = RmsNorm(x, w.FinalNorm, "final_norm");
        var logits = Linear(final, w.Classifier, c.Vocab, d, "classifier");
        b.Node("Identity", [logits], [Logits], name: "logits_out");
        b.Output(Logits, F, "batch", "sequence", c.Vocab);
        if (options.KvCache)
        {
            for (var l = 0; l < c.Layers; l++)
            {
                b.Output(PresentKey(l), F, "batch", c.KvHeads, "total_sequence", hs).Output(PresentValue(l), F, "batch", c.KvHeads, "total_sequence", hs);
            }
        }
        return b.Build();
    }

    /// <summary>The RoPE base if every stored table entry equals cos/sin(p / theta^(2i/head_size)) for theta = 10000.</summary>
    public static double? RopeTheta(Llama2cCheckpoint w, double theta = 10000, double tolerance = 1e-4)
    {
        int hs = w.Config.HeadSize, half = hs / 2;
        for (var p = 0; p < w.Config.MaxSequence; p++)
            for (var i = 0; i < half; i++)
            {
                var angle = (float)p * (float)(1.0 / Math.Pow(theta, 2.0 * i / hs));
                if (Math.Abs(Math.Cos(angle) - w.FreqCisReal[p * half + i]) > tolerance || Math.Abs(Math.Sin(angle) - w.FreqCisImag[p * half + i]) > tolerance)
                {
                    return null;
                }
            }
        return theta;
    }

    private static float[] Transpose(float[] m, int rows, int cols)
    {
        var t = new float[m.Length];
        for (var r = 0; r < rows; r++)
            for (var k = 0; k < cols; k++)
                t[k * rows + r] = m[r * cols + k];
        return t;
    }
}
