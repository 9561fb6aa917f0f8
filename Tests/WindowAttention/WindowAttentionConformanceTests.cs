using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>
/// With a window at least as long as the sequence, WindowAttention is plain causal softmax attention, so it must
/// reproduce the ONNX 1.22.0 conformance outputs of the standard Attention operator for the causal cases that
/// have no mask, no past KV and no softcap (3-D and 4-D layouts, equal and grouped KV heads, v_head_dim != head_dim).
/// Those cases give K and V more positions (6) than Q (4); ONNX's is_causal mask is aligned to the upper left
/// (query i sees keys 0..i), so keys 4 and 5 are never attended and only the first 4 positions are passed to us.
/// The other causal cases are left out: *_attn_mask_*_causal add a mask, *_with_past_and_present_* carry a past KV
/// of a different layout plus a mask. No causal case uses softcap.
/// </summary>
[TestFixture]
public class WindowAttentionConformanceTests
{
    public static readonly string[] Cases =
    [
        "test_attention_3d_causal",
        "test_attention_3d_diff_heads_sizes_causal",
        "test_attention_3d_gqa_causal",
        "test_attention_4d_causal",
        "test_attention_4d_diff_heads_sizes_causal",
        "test_attention_4d_gqa_causal",
    ];

    /// <summary>One conformance case in our packed layout: [batch, seq, heads * dim], the queries' seq positions only.</summary>
    private sealed record Loaded(string Name, int Batch, int Seq, int QHeads, int KvHeads, int Dk, int Dv, float Scale,
        float[] Query, float[] Key, float[] Value, float[] Expected)
    {
        public WindowAttentionCase Case(int window, int sinks = 0) => new(Batch, Seq, QHeads, KvHeads, Dk, Dv, window, sinks, Scale);
    }

    private static Loaded Load(string name)
    {
        var dir = Path.Combine(TestPaths.Shared, "conformance", "onnx-v1.22.0-node", name);
        Assert.That(Directory.Exists(dir), Is.True, $"conformance case {dir} is missing");
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir, "model.onnx")));
        var node = model.Graph.Node.Single(n => n.OpType == "Attention");
        AttributeProto? Attribute(string a) => node.Attribute.SingleOrDefault(x => x.Name == a);
        // The selection rule, checked rather than trusted: causal, Q/K/V only, no softcap.
        Assert.That(Attribute("is_causal")?.I, Is.EqualTo(1), $"{name}: not causal");
        Assert.That(node.Input.Count(i => i.Length > 0), Is.EqualTo(3), $"{name}: has inputs beyond Q, K, V");
        Assert.That(Attribute("softcap")?.F ?? 0f, Is.EqualTo(0f), $"{name}: uses softcap");

        TensorProto Read(string file) => TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(dir, "test_data_set_0", file)));
        var q = Read("input_0.pb");
        var k = Read("input_1.pb");
        var v = Read("input_2.pb");
        var y = Read("output_0.pb");
        int batch = (int)q.Dims[0], qHeads, kvHeads, seq, kvSeq, dk, dv;
        float[] query, key, value, expected;
        if (q.Dims.Count == 3)
        {
            qHeads = (int)Attribute("q_num_heads")!.I;
            kvHeads = (int)Attribute("kv_num_heads")!.I;
            (seq, kvSeq) = ((int)q.Dims[1], (int)k.Dims[1]);
            (dk, dv) = ((int)q.Dims[2] / qHeads, (int)v.Dims[2] / kvHeads);
            query = Tensors.ToFloatArray(q);
            key = SequenceSlices.Slice(Tensors.ToFloatArray(k), batch, kvSeq, kvHeads * dk, 0, seq);
            value = SequenceSlices.Slice(Tensors.ToFloatArray(v), batch, kvSeq, kvHeads * dv, 0, seq);
            expected = Tensors.ToFloatArray(y);
        }
        else
        {
            // 4-D: [batch, heads, seq, dim] -> [batch, seq, heads * dim].
            (qHeads, kvHeads) = ((int)q.Dims[1], (int)k.Dims[1]);
            (seq, kvSeq) = ((int)q.Dims[2], (int)k.Dims[2]);
            (dk, dv) = ((int)q.Dims[3], (int)v.Dims[3]);
            query = Pack(Tensors.ToFloatArray(q), batch, qHeads, seq, dk, seq);
            key = Pack(Tensors.ToFloatArray(k), batch, kvHeads, kvSeq, dk, seq);
            value = Pack(Tensors.ToFloatArray(v), batch, kvHeads, kvSeq, dv, seq);
            expected = Pack(Tensors.ToFloatArray(y), batch, qHeads, seq, dv, seq);
        }
        Assert.That(kvSeq, Is.GreaterThanOrEqualTo(seq), $"{name}: fewer keys than queries");
        return new Loaded(name, batch, seq, qHeads, kvHeads, dk, dv, Attribute("scale")?.F ?? 0f, query, key, value, expected);
    }

    /// <summary>The first <paramref name="keep"/> positions of [batch, heads, seq, dim], as [batch, keep, heads * dim].</summary>
    private static float[] Pack(float[] x, int batch, int heads, int seq, int dim, int keep)
    {
        var r = new float[batch * keep * heads * dim];
        for (var b = 0; b < batch; b++)
            for (var h = 0; h < heads; h++)
                for (var s = 0; s < keep; s++)
                    Array.Copy(x, ((b * heads + h) * seq + s) * dim, r, ((b * keep + s) * heads + h) * dim, dim);
        return r;
    }

    private static float[] RunWhole(Loaded l, int window, int sinks = 0)
    {
        var c = l.Case(window, sinks);
        using var session = new WindowAttentionSession(c.Options, pastInputs: 0);
        return session.Run(c, l.Seq, l.Query, l.Key, l.Value, null).Y;
    }

    [TestCaseSource(nameof(Cases))]
    public void WindowAsLongAsTheSequenceIsCausalAttention(string name)
    {
        var l = Load(name);
        TensorAssert.Close(RunWhole(l, l.Seq), l.Expected, Tolerance.Conformance, $"{name}, window = seq");
        TensorAssert.Close(RunWhole(l, 100), l.Expected, Tolerance.Conformance, $"{name}, window 100");
        // Sinks inside the window are counted once, so they change nothing here.
        TensorAssert.Close(RunWhole(l, l.Seq, sinks: 2), l.Expected, Tolerance.Conformance, $"{name}, window = seq, 2 sinks");
    }

    [TestCaseSource(nameof(Cases))]
    public void DecodingTokenByTokenGivesTheSameOutputs(string name)
    {
        var l = Load(name);
        var c = l.Case(l.Seq, sinks: 1);
        using var session = new WindowAttentionSession(c.Options);
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv, yw = c.QHeads * c.Dv;
        var state = c.ZeroState;
        var y = new float[l.Expected.Length];
        for (var t = 0; t < l.Seq; t++)
        {
            var step = session.Run(c, 1, SequenceSlices.Slice(l.Query, l.Batch, l.Seq, qw, t, 1),
                SequenceSlices.Slice(l.Key, l.Batch, l.Seq, kw, t, 1), SequenceSlices.Slice(l.Value, l.Batch, l.Seq, vw, t, 1), state);
            SequenceSlices.Place(step.Y, y, l.Batch, l.Seq, yw, t, 1);
            state = step.Present!;
        }
        TensorAssert.Close(y, l.Expected, Tolerance.Conformance, $"{name}, token by token");
    }

    [TestCaseSource(nameof(Cases))]
    public void AShorterWindowDiffersFromFullAttention(string name)
    {
        // The control: with window 2 the last queries lose keys, so the ONNX outputs must no longer be met.
        var l = Load(name);
        var got = RunWhole(l, 2);
        var worst = got.Zip(l.Expected, (a, b) => Math.Abs(a - b)).Max();
        Assert.That(worst, Is.GreaterThan(1e-2), $"{name}: window 2 should differ from full causal attention");
    }
}
