using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>
/// With normalise off, identity feature map, the same scale and no fixed decay, our op is exactly ORT's own
/// com.microsoft.LinearAttention under each of its four update rules (per-key and per-head gates, per-head and shared
/// betas, grouped KV heads): both run here, same process, same inputs.
/// </summary>
[TestFixture]
public class OrtLinearAttentionParityTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;

    public static IEnumerable<LinearAttentionCase> Cases()
    {
        yield return new LinearAttentionCase(2, 1, 4, 4, 64, 64, "identity", Normalize: false);
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64, "identity", Normalize: false);
        yield return new LinearAttentionCase(1, 63, 8, 2, 128, 32, "identity", Normalize: false);
        yield return new LinearAttentionCase(3, 7, 6, 3, 60, 1, "identity", Normalize: false);
    }

    public static IEnumerable<LinearAttentionCase> RuleCases()
    {
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64, "identity", Normalize: false, UpdateRule: "gated");
        yield return new LinearAttentionCase(1, 63, 8, 2, 128, 32, "identity", Normalize: false, Scale: 0f, UpdateRule: "gated", GatePerHead: true);
        yield return new LinearAttentionCase(2, 65, 4, 2, 64, 64, "identity", Normalize: false, UpdateRule: "delta");
        yield return new LinearAttentionCase(3, 7, 6, 3, 60, 1, "identity", Normalize: false, Scale: 0.5f, UpdateRule: "delta", SharedBeta: true);
        yield return new LinearAttentionCase(2, 64, 4, 2, 64, 64, "identity", Normalize: false, UpdateRule: "gated_delta");
        yield return new LinearAttentionCase(1, 63, 8, 2, 128, 32, "identity", Normalize: false, Scale: 0f, UpdateRule: "gated_delta",
            GatePerHead: true, SharedBeta: true);
        yield return new LinearAttentionCase(2, 1, 4, 4, 64, 64, "identity", Normalize: false, UpdateRule: "gated_delta", SharedBeta: true);
        yield return new LinearAttentionCase(2, 30, 2, 1, 1, 8, "identity", Normalize: false, UpdateRule: "gated_delta", GatePerHead: true);
    }

    private static ModelProto OrtModel(LinearAttentionCase c)
    {
        var b = new ModelBuilder("ort_linear_attention")
            .Opset("com.microsoft", 1)
            .Input("query", F, "batch", "seq", c.QHeads * c.Dk)
            .Input("key", F, "batch", "seq", c.KvHeads * c.Dk)
            .Input("value", F, "batch", "seq", c.KvHeads * c.Dv)
            .Input("past_state", F, "batch", c.KvHeads, c.Dk, c.Dv);
        var inputs = new List<string> { "query", "key", "value", "past_state", "", "" };
        if (c.DecayWidth > 0)
        {
            b.Input("decay", F, "batch", "seq", c.DecayWidth);
            inputs[4] = "decay";
        }
        if (c.BetaWidth > 0)
        {
            b.Input("beta", F, "batch", "seq", c.BetaWidth);
            inputs[5] = "beta";
        }
        while (inputs[^1].Length == 0) inputs.RemoveAt(inputs.Count - 1);
        return b.Node("LinearAttention", inputs, ["output", "present_state"], "com.microsoft", null,
                Attr.Int("q_num_heads", c.QHeads), Attr.Int("kv_num_heads", c.KvHeads),
                Attr.String("update_rule", c.UpdateRule), Attr.Float("scale", c.Scale))
            .Output("output", F, "batch", "seq", c.QHeads * c.Dv)
            .Output("present_state", F, "batch", c.KvHeads, c.Dk, c.Dv)
            .Build();
    }

    [TestCaseSource(nameof(Cases))]
    [TestCaseSource(nameof(RuleCases))]
    public void EqualsOrtLinearAttention(LinearAttentionCase c)
    {
        var past = c.PastState;
        var decay = c.Decay;
        var beta = c.Beta;
        using var ort = SessionFactory.Create(OrtModel(c), intraOpThreads: 1);
        var names = new List<string> { "query", "key", "value", "past_state" };
        using var values = new DisposableList<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(c.Query, [c.Batch, c.Seq, c.QHeads * c.Dk]),
            OrtValue.CreateTensorValueFromMemory(c.Key, [c.Batch, c.Seq, c.KvHeads * c.Dk]),
            OrtValue.CreateTensorValueFromMemory(c.Value, [c.Batch, c.Seq, c.KvHeads * c.Dv]),
            OrtValue.CreateTensorValueFromMemory(past, c.StateShape),
        };
        if (decay != null)
        {
            names.Add("decay");
            values.Add(OrtValue.CreateTensorValueFromMemory(decay, c.DecayShape));
        }
        if (beta != null)
        {
            names.Add("beta");
            values.Add(OrtValue.CreateTensorValueFromMemory(beta, c.BetaShape));
        }
        using var runOptions = new RunOptions();
        using var theirs = ort.Session.Run(runOptions, names, values, ["output", "present_state"]);

        using var mine = new LinearAttentionSession(c.Options, withPast: true);
        var ours = mine.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, past, new float[c.Batch * c.KvHeads * c.Dk], c.StateShape, c.NormalizerShape,
            decay: decay, beta: beta);

        TensorAssert.Close(ours.Y, theirs[0].GetTensorDataAsSpan<float>(), Tolerance.Float32Reordered, $"{c}: output vs ORT");
        TensorAssert.Close(ours.State, theirs[1].GetTensorDataAsSpan<float>(), Tolerance.Float32Reordered, $"{c}: state vs ORT");
    }
}
