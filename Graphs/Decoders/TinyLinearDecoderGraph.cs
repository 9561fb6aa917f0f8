using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Graphs.Decoders;

/// <summary>
/// A small pre-norm decoder whose every attention is our LinearAttention with its state as graph inputs and
/// outputs: ids -> embedding -> L x (LayerNorm -> Q,K,V -> LinearAttention -> O, residual; LayerNorm -> MLP,
/// residual) -> LayerNorm -> output projection. Weights are seeded random: it demonstrates the plumbing of a
/// stateful decoder (prefill, then one token at a time), not language.
/// </summary>
public static class TinyLinearDecoderGraph
{
    public const string InputIds = "input_ids";
    public const string Logits = "logits";

    public static string PastState(int layer) => $"past_state.{layer}";
    public static string PastNormalizer(int layer) => $"past_normalizer.{layer}";
    public static string PresentState(int layer) => $"present_state.{layer}";
    public static string PresentNormalizer(int layer) => $"present_normalizer.{layer}";

    public static ModelProto Build(TinyDecoderConfig c)
    {
        c.Validate();
        const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
        var rng = new Random(c.Seed);
        var b = new ModelBuilder("tiny_linear_decoder");
        int d = c.Hidden, dk = c.HeadDim, kvWidth = c.KvHeads * dk;

        b.Input(InputIds, TensorProto.Types.DataType.Int64, "batch", "sequence");
        b.Initializer(Tensors.Float("embedding", Random(rng, c.Vocab * d, 0.5f), c.Vocab, d));
        b.Initializer(Tensors.Float("ln_scale", Enumerable.Repeat(1f, d).ToArray(), d));
        b.Initializer(Tensors.Float("ln_bias", new float[d], d));
        b.Node("Gather", ["embedding", InputIds], ["x.0"], name: "embed");

        for (var l = 0; l < c.Layers; l++)
        {
            string P(string n) => $"layers.{l}.{n}";
            b.Input(PastState(l), F, "batch", c.KvHeads, dk, dk)
             .Input(PastNormalizer(l), F, "batch", c.KvHeads, dk);
            Weight(b, rng, P("wq"), d, d);
            Weight(b, rng, P("wk"), d, kvWidth);
            Weight(b, rng, P("wv"), d, kvWidth);
            Weight(b, rng, P("wo"), d, d);
            Weight(b, rng, P("w1"), d, c.FeedForward);
            Weight(b, rng, P("w2"), c.FeedForward, d);

            b.Node("LayerNormalization", [$"x.{l}", "ln_scale", "ln_bias"], [P("h")], name: P("attn_norm"), attributes: Attr.Int("axis", -1))
             .Node("MatMul", [P("h"), P("wq")], [P("q")], name: P("q_proj"))
             .Node("MatMul", [P("h"), P("wk")], [P("k")], name: P("k_proj"))
             .Node("MatMul", [P("h"), P("wv")], [P("v")], name: P("v_proj"))
             .LinearAttention(new LinearAttentionNode.Options(c.QueryHeads, c.KvHeads, "elu_plus_one", true, 1e-6f, 1f),
                 P("q"), P("k"), P("v"), PastState(l), PastNormalizer(l), P("attn"), PresentState(l), PresentNormalizer(l), P("attention"))
             .Node("MatMul", [P("attn"), P("wo")], [P("o")], name: P("o_proj"))
             .Node("Add", [$"x.{l}", P("o")], [P("x_mid")], name: P("attn_residual"))
             .Node("LayerNormalization", [P("x_mid"), "ln_scale", "ln_bias"], [P("h2")], name: P("mlp_norm"), attributes: Attr.Int("axis", -1))
             .Node("MatMul", [P("h2"), P("w1")], [P("up")], name: P("up_proj"))
             .Node("Relu", [P("up")], [P("act")], name: P("act"))
             .Node("MatMul", [P("act"), P("w2")], [P("down")], name: P("down_proj"))
             .Node("Add", [P("x_mid"), P("down")], [$"x.{l + 1}"], name: P("mlp_residual"));
            b.Output(PresentState(l), F, "batch", c.KvHeads, dk, dk)
             .Output(PresentNormalizer(l), F, "batch", c.KvHeads, dk);
        }

        // An untied head: with random weights a tied one just echoes the last input token.
        Weight(b, rng, "lm_head.weight", d, c.Vocab);
        b.Node("LayerNormalization", [$"x.{c.Layers}", "ln_scale", "ln_bias"], ["final"], name: "final_norm", attributes: Attr.Int("axis", -1))
         .Node("MatMul", ["final", "lm_head.weight"], [Logits], name: "lm_head")
         .Output(Logits, F, "batch", "sequence", c.Vocab);
        return b.Build();
    }

    private static void Weight(ModelBuilder b, Random rng, string name, int rows, int cols) =>
        b.Initializer(Tensors.Float(name, Random(rng, rows * cols, 1f / MathF.Sqrt(rows)), rows, cols));

    private static float[] Random(Random rng, int n, float scale)
    {
        var x = new float[n];
        for (var i = 0; i < n; i++) x[i] = scale * (2f * (float)rng.NextDouble() - 1f);
        return x;
    }
}
