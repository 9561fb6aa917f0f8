using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Cli.Bench;

/// <summary>One-node models of our operators and of ONNX Runtime's own peers, with matching inputs.</summary>
public static class BenchModels
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    private const TensorProto.Types.DataType I32 = TensorProto.Types.DataType.Int32;

    public sealed record Shape(int Batch, int Seq, int QHeads, int KvHeads, int HeadDim);

    /// <param name="normalizer">
    /// Whether the model carries the normaliser state (z, z_out); the ORT-compatible mode does not read it, and without
    /// it our model moves exactly the state com.microsoft.LinearAttention moves (bench-ops --targets).
    /// </param>
    public static (ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) OurLinear(Shape s, bool ortCompatible,
        bool normalizer = true)
    {
        if (!normalizer && !ortCompatible) throw new ArgumentException("a normalised LinearAttention needs its normaliser state");
        var o = new LinearAttentionNode.Options(s.QHeads, s.KvHeads, ortCompatible ? "identity" : "elu_plus_one", Normalize: !ortCompatible, Epsilon: 1e-6f, Scale: 1f);
        var builder = new ModelBuilder("ours")
            .Input("q", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Input("k", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim).Input("v", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim)
            .Input("s", F, s.Batch, s.KvHeads, s.HeadDim, s.HeadDim);
        if (normalizer) builder.Input("z", F, s.Batch, s.KvHeads, s.HeadDim);
        builder.LinearAttention(o, "q", "k", "v", "s", normalizer ? "z" : "", "y", "s_out", normalizer ? "z_out" : "")
            .Output("y", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Output("s_out", F, s.Batch, s.KvHeads, s.HeadDim, s.HeadDim);
        if (normalizer) builder.Output("z_out", F, s.Batch, s.KvHeads, s.HeadDim);
        var inputs = QkvInputs(s);
        inputs["s"] = (BoundModel.Filled((long)s.Batch * s.KvHeads * s.HeadDim * s.HeadDim, 4, 0.01f), [s.Batch, s.KvHeads, s.HeadDim, s.HeadDim]);
        var outputs = new Dictionary<string, (Array, long[])>
        {
            ["y"] = (new float[(long)s.Batch * s.Seq * s.QHeads * s.HeadDim], [s.Batch, s.Seq, s.QHeads * s.HeadDim]),
            ["s_out"] = (new float[(long)s.Batch * s.KvHeads * s.HeadDim * s.HeadDim], [s.Batch, s.KvHeads, s.HeadDim, s.HeadDim]),
        };
        if (normalizer)
        {
            inputs["z"] = (Positive((long)s.Batch * s.KvHeads * s.HeadDim), [s.Batch, s.KvHeads, s.HeadDim]);
            outputs["z_out"] = (new float[(long)s.Batch * s.KvHeads * s.HeadDim], [s.Batch, s.KvHeads, s.HeadDim]);
        }
        return (builder.Build(), inputs, outputs);
    }

    public static (ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) OrtLinear(Shape s)
    {
        var model = new ModelBuilder("ort")
            .Opset("com.microsoft", 1)
            .Input("q", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Input("k", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim).Input("v", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim)
            .Input("s", F, s.Batch, s.KvHeads, s.HeadDim, s.HeadDim)
            .Node("LinearAttention", ["q", "k", "v", "s"], ["y", "s_out"], "com.microsoft", null,
                Attr.Int("q_num_heads", s.QHeads), Attr.Int("kv_num_heads", s.KvHeads), Attr.String("update_rule", "linear"), Attr.Float("scale", 1f))
            .Output("y", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Output("s_out", F, s.Batch, s.KvHeads, s.HeadDim, s.HeadDim)
            .Build();
        var inputs = QkvInputs(s);
        inputs["s"] = (BoundModel.Filled((long)s.Batch * s.KvHeads * s.HeadDim * s.HeadDim, 4, 0.01f), [s.Batch, s.KvHeads, s.HeadDim, s.HeadDim]);
        var outputs = new Dictionary<string, (Array, long[])>
        {
            ["y"] = (new float[(long)s.Batch * s.Seq * s.QHeads * s.HeadDim], [s.Batch, s.Seq, s.QHeads * s.HeadDim]),
            ["s_out"] = (new float[(long)s.Batch * s.KvHeads * s.HeadDim * s.HeadDim], [s.Batch, s.KvHeads, s.HeadDim, s.HeadDim]),
        };
        return (model, inputs, outputs);
    }

    /// <summary>
    /// ORT's GroupQueryAttention decoding one token against a KV cache of <paramref name="context"/> tokens, the cache
    /// buffer shared between past and present (how onnxruntime-genai runs it), optionally with a local window;
    /// <paramref name="pastKey"/> and <paramref name="pastValue"/> reuse another model's cache buffers.
    /// </summary>
    public static (ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs, Dictionary<string, string> Shared) OrtGqaDecode(Shape s, int context, int localWindow = -1,
        float[]? pastKey = null, float[]? pastValue = null)
    {
        var max = context + 1;
        var model = new ModelBuilder("ort_gqa")
            .Opset("com.microsoft", 1)
            .Input("q", F, s.Batch, 1, s.QHeads * s.HeadDim).Input("k", F, s.Batch, 1, s.KvHeads * s.HeadDim).Input("v", F, s.Batch, 1, s.KvHeads * s.HeadDim)
            .Input("past_key", F, s.Batch, s.KvHeads, max, s.HeadDim).Input("past_value", F, s.Batch, s.KvHeads, max, s.HeadDim)
            .Input("seqlens_k", I32, s.Batch).Input("total_sequence_length", I32)
            .Node("GroupQueryAttention", ["q", "k", "v", "past_key", "past_value", "seqlens_k", "total_sequence_length"], ["y", "present_key", "present_value"], "com.microsoft", null,
                Attr.Int("num_heads", s.QHeads), Attr.Int("kv_num_heads", s.KvHeads), Attr.Int("local_window_size", localWindow))
            .Output("y", F, s.Batch, 1, s.QHeads * s.HeadDim)
            .Output("present_key", F, s.Batch, s.KvHeads, max, s.HeadDim).Output("present_value", F, s.Batch, s.KvHeads, max, s.HeadDim)
            .Build();
        var d1 = new Shape(s.Batch, 1, s.QHeads, s.KvHeads, s.HeadDim);
        var inputs = QkvInputs(d1);
        long cache = (long)s.Batch * s.KvHeads * max * s.HeadDim;
        // Caches may be shared between two models of the same shape (full and local window): they can be gigabytes.
        inputs["past_key"] = (pastKey ?? BoundModel.Filled(cache, 5), [s.Batch, s.KvHeads, max, s.HeadDim]);
        inputs["past_value"] = (pastValue ?? BoundModel.Filled(cache, 6), [s.Batch, s.KvHeads, max, s.HeadDim]);
        inputs["seqlens_k"] = (Enumerable.Repeat(context, s.Batch).ToArray(), [s.Batch]);
        inputs["total_sequence_length"] = (new[] { context + 1 }, []);
        var outputs = new Dictionary<string, (Array, long[])>
        {
            ["y"] = (new float[(long)s.Batch * s.QHeads * s.HeadDim], [s.Batch, 1, s.QHeads * s.HeadDim]),
            ["present_key"] = (Array.Empty<float>(), []),
            ["present_value"] = (Array.Empty<float>(), []),
        };
        return (model, inputs, outputs, new Dictionary<string, string> { ["present_key"] = "past_key", ["present_value"] = "past_value" });
    }

    /// <summary>ORT's GroupQueryAttention prefilling <c>s.Seq</c> tokens from an empty cache, with a local window (or none: -1).</summary>
    public static (ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) OrtGqaPrefill(Shape s, int localWindow)
    {
        var model = new ModelBuilder("ort_gqa_prefill")
            .Opset("com.microsoft", 1)
            .Input("q", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Input("k", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim).Input("v", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim)
            .Input("past_key", F, s.Batch, s.KvHeads, 0, s.HeadDim).Input("past_value", F, s.Batch, s.KvHeads, 0, s.HeadDim)
            .Input("seqlens_k", I32, s.Batch).Input("total_sequence_length", I32)
            .Node("GroupQueryAttention", ["q", "k", "v", "past_key", "past_value", "seqlens_k", "total_sequence_length"], ["y", "present_key", "present_value"], "com.microsoft", null,
                Attr.Int("num_heads", s.QHeads), Attr.Int("kv_num_heads", s.KvHeads), Attr.Int("local_window_size", localWindow))
            .Output("y", F, s.Batch, s.Seq, s.QHeads * s.HeadDim)
            .Output("present_key", F, s.Batch, s.KvHeads, s.Seq, s.HeadDim).Output("present_value", F, s.Batch, s.KvHeads, s.Seq, s.HeadDim)
            .Build();
        var inputs = QkvInputs(s);
        inputs["past_key"] = (Array.Empty<float>(), [s.Batch, s.KvHeads, 0, s.HeadDim]);
        inputs["past_value"] = (Array.Empty<float>(), [s.Batch, s.KvHeads, 0, s.HeadDim]);
        inputs["seqlens_k"] = (Enumerable.Repeat(s.Seq - 1, s.Batch).ToArray(), [s.Batch]);
        inputs["total_sequence_length"] = (new[] { s.Seq }, []);
        long cache = (long)s.Batch * s.KvHeads * s.Seq * s.HeadDim;
        var outputs = new Dictionary<string, (Array, long[])>
        {
            ["y"] = (new float[(long)s.Batch * s.Seq * s.QHeads * s.HeadDim], [s.Batch, s.Seq, s.QHeads * s.HeadDim]),
            ["present_key"] = (new float[cache], [s.Batch, s.KvHeads, s.Seq, s.HeadDim]),
            ["present_value"] = (new float[cache], [s.Batch, s.KvHeads, s.Seq, s.HeadDim]),
        };
        return (model, inputs, outputs);
    }

    /// <summary>Our WindowAttention prefilling <c>s.Seq</c> tokens from an empty cache (no past inputs).</summary>
    public static (ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) OurWindowPrefill(Shape s, int window)
    {
        var o = new WindowAttentionNode.Options(s.QHeads, window, s.KvHeads, 0, 0f, 0f);
        long cache = (long)s.Batch * s.KvHeads * window * s.HeadDim;
        var model = new ModelBuilder("ours_window_prefill")
            .Input("q", F, s.Batch, s.Seq, s.QHeads * s.HeadDim).Input("k", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim).Input("v", F, s.Batch, s.Seq, s.KvHeads * s.HeadDim)
            .WindowAttention(o, ["q", "k", "v"], ["y", "kc_out", "vc_out"])
            .Output("y", F, s.Batch, s.Seq, s.QHeads * s.HeadDim)
            .Output("kc_out", F, s.Batch, s.KvHeads, window, s.HeadDim).Output("vc_out", F, s.Batch, s.KvHeads, window, s.HeadDim)
            .Build();
        var outputs = new Dictionary<string, (Array, long[])>
        {
            ["y"] = (new float[(long)s.Batch * s.Seq * s.QHeads * s.HeadDim], [s.Batch, s.Seq, s.QHeads * s.HeadDim]),
            ["kc_out"] = (new float[cache], [s.Batch, s.KvHeads, window, s.HeadDim]),
            ["vc_out"] = (new float[cache], [s.Batch, s.KvHeads, window, s.HeadDim]),
        };
        return (model, QkvInputs(s), outputs);
    }

    /// <summary>Our WindowAttention decoding one token with a full ring cache of W rows at absolute position <paramref name="position"/>.</summary>
    public static (ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) OurWindowDecode(Shape s, int window, long position)
    {
        var o = new WindowAttentionNode.Options(s.QHeads, window, s.KvHeads, 0, 0f, 0f);
        long cache = (long)s.Batch * s.KvHeads * window * s.HeadDim;
        var model = new ModelBuilder("ours_window")
            .Input("q", F, s.Batch, 1, s.QHeads * s.HeadDim).Input("k", F, s.Batch, 1, s.KvHeads * s.HeadDim).Input("v", F, s.Batch, 1, s.KvHeads * s.HeadDim)
            .Input("kc", F, s.Batch, s.KvHeads, window, s.HeadDim).Input("vc", F, s.Batch, s.KvHeads, window, s.HeadDim).Input("pos", TensorProto.Types.DataType.Int64, s.Batch)
            .WindowAttention(o, ["q", "k", "v", "kc", "vc", "pos"], ["y", "kc_out", "vc_out", "pos_out"])
            .Output("y", F, s.Batch, 1, s.QHeads * s.HeadDim)
            .Output("kc_out", F, s.Batch, s.KvHeads, window, s.HeadDim).Output("vc_out", F, s.Batch, s.KvHeads, window, s.HeadDim)
            .Output("pos_out", TensorProto.Types.DataType.Int64, s.Batch)
            .Build();
        var inputs = QkvInputs(s with { Seq = 1 });
        inputs["kc"] = (BoundModel.Filled(cache, 5), [s.Batch, s.KvHeads, window, s.HeadDim]);
        inputs["vc"] = (BoundModel.Filled(cache, 6), [s.Batch, s.KvHeads, window, s.HeadDim]);
        inputs["pos"] = (Enumerable.Repeat(position, s.Batch).ToArray(), [s.Batch]);
        var outputs = new Dictionary<string, (Array, long[])>
        {
            ["y"] = (new float[(long)s.Batch * s.QHeads * s.HeadDim], [s.Batch, 1, s.QHeads * s.HeadDim]),
            ["kc_out"] = (new float[cache], [s.Batch, s.KvHeads, window, s.HeadDim]),
            ["vc_out"] = (new float[cache], [s.Batch, s.KvHeads, window, s.HeadDim]),
            ["pos_out"] = (new long[s.Batch], [s.Batch]),
        };
        return (model, inputs, outputs);
    }

    private static Dictionary<string, (Array, long[])> QkvInputs(Shape s) => new()
    {
        ["q"] = (BoundModel.Filled((long)s.Batch * s.Seq * s.QHeads * s.HeadDim, 1), [s.Batch, s.Seq, s.QHeads * s.HeadDim]),
        ["k"] = (BoundModel.Filled((long)s.Batch * s.Seq * s.KvHeads * s.HeadDim, 2), [s.Batch, s.Seq, s.KvHeads * s.HeadDim]),
        ["v"] = (BoundModel.Filled((long)s.Batch * s.Seq * s.KvHeads * s.HeadDim, 3), [s.Batch, s.Seq, s.KvHeads * s.HeadDim]),
    };

    private static float[] Positive(long n) => Enumerable.Repeat(1f, (int)n).ToArray();
}
