using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>
/// With normalise off, identity feature map and scale 1, our op is exactly ORT's own
/// com.microsoft.LinearAttention with update_rule=linear: both run here, same process, same inputs.
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

    private static ModelProto OrtModel(LinearAttentionCase c) =>
        new ModelBuilder("ort_linear_attention")
            .Opset("com.microsoft", 1)
            .Input("query", F, "batch", "seq", c.QHeads * c.Dk)
            .Input("key", F, "batch", "seq", c.KvHeads * c.Dk)
            .Input("value", F, "batch", "seq", c.KvHeads * c.Dv)
            .Input("past_state", F, "batch", c.KvHeads, c.Dk, c.Dv)
            .Node("LinearAttention", ["query", "key", "value", "past_state"], ["output", "present_state"], "com.microsoft", null,
                Attr.Int("q_num_heads", c.QHeads), Attr.Int("kv_num_heads", c.KvHeads),
                Attr.String("update_rule", "linear"), Attr.Float("scale", 1f))
            .Output("output", F, "batch", "seq", c.QHeads * c.Dv)
            .Output("present_state", F, "batch", c.KvHeads, c.Dk, c.Dv)
            .Build();

    [TestCaseSource(nameof(Cases))]
    public void EqualsOrtLinearAttention(LinearAttentionCase c)
    {
        var past = c.PastState;
        using var ort = SessionFactory.Create(OrtModel(c), intraOpThreads: 1);
        using var values = new DisposableList<OrtValue>
        {
            OrtValue.CreateTensorValueFromMemory(c.Query, [c.Batch, c.Seq, c.QHeads * c.Dk]),
            OrtValue.CreateTensorValueFromMemory(c.Key, [c.Batch, c.Seq, c.KvHeads * c.Dk]),
            OrtValue.CreateTensorValueFromMemory(c.Value, [c.Batch, c.Seq, c.KvHeads * c.Dv]),
            OrtValue.CreateTensorValueFromMemory(past, c.StateShape),
        };
        using var runOptions = new RunOptions();
        using var theirs = ort.Session.Run(runOptions, ["query", "key", "value", "past_state"], values, ["output", "present_state"]);

        using var mine = new LinearAttentionSession(c.Options, withPast: true);
        var ours = mine.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, past, new float[c.Batch * c.KvHeads * c.Dk], c.StateShape, c.NormalizerShape);

        TensorAssert.Close(ours.Y, theirs[0].GetTensorDataAsSpan<float>(), Tolerance.Float32Reordered, $"{c}: output vs ORT");
        TensorAssert.Close(ours.State, theirs[1].GetTensorDataAsSpan<float>(), Tolerance.Float32Reordered, $"{c}: state vs ORT");
    }
}
