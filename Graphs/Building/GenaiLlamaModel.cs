using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Building;

/// <summary>
/// Writes a Llama decoder with seeded random weights in the form the onnxruntime-genai model builder gives
/// (CPU, float32; the form of ../shared/fixtures/real-exports/llama-genai-gqa): opset 21 plus com.microsoft 1,
/// packed QKV into com.microsoft.GroupQueryAttention with do_rotary and cos/sin caches, SimplifiedLayerNormalization
/// (default domain, as the builder writes it) then SkipSimplifiedLayerNormalization carrying the residual, SiLU as
/// Sigmoid·x, and the attention mask reaching the attention as seqlens_k = ReduceSum(mask) - 1 and
/// total_sequence_length = Shape(mask)[1]. Inputs input_ids, attention_mask, past_key_values.N.key/value
/// [batch, kv_heads, past, head_size]; outputs logits and present.N.key/value.
/// </summary>
public static class GenaiLlamaModel
{
    public const string InputIds = "input_ids", AttentionMask = "attention_mask", Logits = "logits";
    public const string PastKeyTemplate = "past_key_values.%d.key", PastValueTemplate = "past_key_values.%d.value";
    public const string PresentKeyTemplate = "present.%d.key", PresentValueTemplate = "present.%d.value";
    public const string MicrosoftDomain = "com.microsoft";

    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    private const TensorProto.Types.DataType I64 = TensorProto.Types.DataType.Int64;
    private const TensorProto.Types.DataType I32 = TensorProto.Types.DataType.Int32;

    public static string Name(string template, int layer) => template.Replace("%d", layer.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);

    public static ModelProto Build(GenaiLlamaConfig c)
    {
        c.Validate();
        var random = new SeededUniform(c.Seed);
        int hs = c.HeadSize, h = c.Hidden;
        var b = new ModelBuilder("genai_llama", defaultOpset: 21).Opset(MicrosoftDomain, 1);

        b.Input(InputIds, I64, "batch_size", "sequence_length");
        b.Input(AttentionMask, I64, "batch_size", "total_sequence_length");
        for (var l = 0; l < c.Layers; l++)
        {
            b.Input(Name(PastKeyTemplate, l), F, "batch_size", c.KvHeads, "past_sequence_length", hs);
            b.Input(Name(PastValueTemplate, l), F, "batch_size", c.KvHeads, "past_sequence_length", hs);
        }
        b.Output(Logits, F, "batch_size", "sequence_length", c.Vocab);
        for (var l = 0; l < c.Layers; l++)
        {
            b.Output(Name(PresentKeyTemplate, l), F, "batch_size", c.KvHeads, "total_sequence_length", hs);
            b.Output(Name(PresentValueTemplate, l), F, "batch_size", c.KvHeads, "total_sequence_length", hs);
        }

        // The builder's attention-mask subgraph: one per model, read by every layer's GroupQueryAttention.
        const string mask = "/model/attn_mask_reformat/attn_mask_subgraph";
        b.Initializer(Tensors.Int64(mask + "/ReduceSum/Constant", [1], 1));
        b.Initializer(Tensors.Int64(mask + "/Sub/Constant", [1]));
        b.Initializer(Tensors.Int64(mask + "/Gather/Constant", [1]));
        b.Node("ReduceSum", [AttentionMask, mask + "/ReduceSum/Constant"], [mask + "/ReduceSum/output_0"], name: mask + "/ReduceSum", attributes: Attr.Int("keepdims", 0));
        b.Node("Sub", [mask + "/ReduceSum/output_0", mask + "/Sub/Constant"], [mask + "/Sub/output_0"], name: mask + "/Sub");
        b.Node("Cast", [mask + "/Sub/output_0"], [mask + "/Sub/Cast/output_0"], name: mask + "/Sub/Cast", attributes: Attr.Int("to", (int)I32));
        b.Node("Shape", [AttentionMask], [mask + "/Shape/output_0"], name: mask + "/Shape");
        b.Node("Gather", [mask + "/Shape/output_0", mask + "/Gather/Constant"], [mask + "/Gather/output_0"], name: mask + "/Gather", attributes: Attr.Int("axis", 0));
        b.Node("Cast", [mask + "/Gather/output_0"], [mask + "/Gather/Cast/output_0"], name: mask + "/Gather/Cast", attributes: Attr.Int("to", (int)I32));
        var seqlensK = mask + "/Sub/Cast/output_0";
        var totalLength = mask + "/Gather/Cast/output_0";

        // Rotary caches [context, head_size / 2] (non-interleaved halves), as the builder stores them.
        var half = hs / 2;
        var cos = new float[c.ContextLength * half];
        var sin = new float[c.ContextLength * half];
        for (var p = 0; p < c.ContextLength; p++)
        {
            for (var i = 0; i < half; i++)
            {
                var angle = p / Math.Pow(c.RopeTheta, 2.0 * i / hs);
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        }
        b.Initializer(Tensors.Float("cos_cache", cos, c.ContextLength, half));
        b.Initializer(Tensors.Float("sin_cache", sin, c.ContextLength, half));

        string Weight(string name, int rows, int cols, float bound)
        {
            b.Initializer(Tensors.Float(name, random.Fill(rows * cols, bound), rows, cols));
            return name;
        }
        string Ones(string name, int n)
        {
            b.Initializer(Tensors.Float(name, Enumerable.Repeat(1f, n).ToArray(), n));
            return name;
        }
        string MatMul(string x, string weight, string name)
        {
            b.Node("MatMul", [x, weight], [name + "/output_0"], name: name);
            return name + "/output_0";
        }
        float Bound(int fanIn) => MathF.Sqrt(3f / fanIn);

        b.Node("Gather", [Weight("model.embed_tokens.weight", c.Vocab, h, 1f), InputIds], ["/model/embed_tokens/Gather/output_0"], name: "/model/embed_tokens/Gather");
        var residual = "/model/embed_tokens/Gather/output_0";
        string normed;
        var eps = Attr.Float("epsilon", c.RmsEpsilon);
        b.Node("SimplifiedLayerNormalization", [residual, Ones("model.layers.0.input_layernorm.weight", h)], ["/model/layers.0/input_layernorm/output_0"],
            name: "/model/layers.0/input_layernorm/LayerNorm", attributes: [Attr.Int("axis", -1), eps, Attr.Int("stash_type", 1)]);
        normed = "/model/layers.0/input_layernorm/output_0";

        string SkipNorm(string x, string skip, string weight, string name)
        {
            b.Node("SkipSimplifiedLayerNormalization", [x, skip, weight], [name + "/output_0", "", "", name + "/output_3"],
                domain: MicrosoftDomain, name: name, attributes: eps);
            residual = name + "/output_3";
            return name + "/output_0";
        }

        for (var l = 0; l < c.Layers; l++)
        {
            var p = $"/model/layers.{l}";
            var w = $"model.layers.{l}";
            var qkv = MatMul(normed, Weight(w + ".attn.qkv_proj.weight", h, h + 2 * c.KvWidth, Bound(h)), p + "/attn/qkv_proj/MatMul");
            b.Node("GroupQueryAttention",
                [qkv, "", "", Name(PastKeyTemplate, l), Name(PastValueTemplate, l), seqlensK, totalLength, "cos_cache", "sin_cache", "", "", ""],
                [p + "/attn/GroupQueryAttention/output_0", Name(PresentKeyTemplate, l), Name(PresentValueTemplate, l)],
                domain: MicrosoftDomain, name: p + "/attn/GroupQueryAttention",
                attributes: [Attr.Int("num_heads", c.Heads), Attr.Int("kv_num_heads", c.KvHeads), Attr.Float("scale", 1f / MathF.Sqrt(hs)),
                    Attr.Int("local_window_size", -1), Attr.Int("do_rotary", 1), Attr.Int("rotary_interleaved", 0), Attr.Float("softcap", 0f)]);
            var attention = MatMul(p + "/attn/GroupQueryAttention/output_0", Weight(w + ".attn.o_proj.weight", h, h, Bound(h)), p + "/attn/o_proj/MatMul");
            normed = SkipNorm(attention, residual, Ones(w + ".post_attention_layernorm.weight", h), p + "/post_attention_layernorm/SkipLayerNorm");
            var gate = MatMul(normed, Weight(w + ".mlp.gate_proj.weight", h, c.Intermediate, Bound(h)), p + "/mlp/gate_proj/MatMul");
            var up = MatMul(normed, Weight(w + ".mlp.up_proj.weight", h, c.Intermediate, Bound(h)), p + "/mlp/up_proj/MatMul");
            b.Node("Sigmoid", [gate], [p + "/mlp/act_fn/Sigmoid/output_0"], name: p + "/mlp/act_fn/Sigmoid");
            b.Node("Mul", [gate, p + "/mlp/act_fn/Sigmoid/output_0"], [p + "/mlp/act_fn/Mul/output_0"], name: p + "/mlp/act_fn/Mul");
            b.Node("Mul", [p + "/mlp/act_fn/Mul/output_0", up], [p + "/mlp/Mul/output_0"], name: p + "/mlp/Mul");
            var down = MatMul(p + "/mlp/Mul/output_0", Weight(w + ".mlp.down_proj.weight", c.Intermediate, h, Bound(c.Intermediate)), p + "/mlp/down_proj/MatMul");
            var next = l + 1 < c.Layers ? $"model.layers.{l + 1}.input_layernorm.weight" : "model.norm.weight";
            var nextName = l + 1 < c.Layers ? $"/model/layers.{l + 1}/input_layernorm/SkipLayerNorm" : $"/model/layers.{c.Layers}/final_norm_layernorm/SkipLayerNorm";
            normed = SkipNorm(down, residual, Ones(next, h), nextName);
        }
        // Logits of standard deviation about 2, so that greedy choices are not near ties.
        b.Node("MatMul", [normed, Weight("lm_head.MatMul.weight", h, c.Vocab, 2f * Bound(h))], [Logits], name: "/lm_head/MatMul");
        var model = b.Build("onnxruntime-genai");
        return model;
    }

    /// <summary>Uniform values in [-bound, bound] from a fixed xorshift sequence (the same weights on every machine and .NET version).</summary>
    private sealed class SeededUniform(int seed)
    {
        private ulong _state = 0x9E3779B97F4A7C15UL ^ (ulong)(uint)seed;

        public float[] Fill(int count, float bound)
        {
            var values = new float[count];
            for (var i = 0; i < values.Length; i++)
            {
                _state ^= _state << 13;
                _state ^= _state >> 7;
                _state ^= _state << 17;
                values[i] = ((_state >> 40) / (float)(1UL << 24) * 2f - 1f) * bound;
            }
            return values;
        }
    }
}
