using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

[TestFixture]
public class LinearAttentionEdgeTests
{
    [Test]
    public void EmptySequencePassesTheStateThrough()
    {
        var c = new LinearAttentionCase(2, 0, 4, 2, 8, 6);
        using var session = new LinearAttentionSession(c.Options, withPast: true);
        var got = session.Run(c.Batch, 0, [], [], [], c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape,
            queryShape: [c.Batch, 0, c.QHeads * c.Dk], keyShape: [c.Batch, 0, c.KvHeads * c.Dk], valueShape: [c.Batch, 0, c.KvHeads * c.Dv]);
        Assert.That(got.YShape, Is.EqualTo(new long[] { 2, 0, 24 }));
        Assert.That(got.State, Is.EqualTo(c.PastState));
        Assert.That(got.Normalizer, Is.EqualTo(c.PastNormalizer));
    }

    [Test]
    public void OptionalStateInputsMayBeOmitted()
    {
        var c = new LinearAttentionCase(1, 4, 2, 1, 3, 5);
        using var session = new LinearAttentionSession(c.Options, withPast: false);
        var got = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value);
        TensorAssert.Close(got.Y, c.Reference(withPast: false).Output, Tolerance.Float32, "output from zero state");
    }
}

[TestFixture]
public class LinearAttentionOptionalOutputTests
{
    [Test]
    public void ANodeThatWantsOnlyTheOutputGetsIt()
    {
        var c = new LinearAttentionCase(2, 9, 4, 2, 8, 6);
        const OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType F = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Float;
        var model = new OnnxAttention.Graphs.Building.ModelBuilder("y_only")
            .Input("q", F, "b", "t", 32).Input("k", F, "b", "t", 16).Input("v", F, "b", "t", 12)
            .LinearAttention(c.Options, "q", "k", "v", "", "", "y", "", "")
            .Output("y", F, "b", "t", 24)
            .Build();
        using var runner = new ModelRunner(model);
        var got = runner.Run(new Dictionary<string, FloatTensor>
        {
            ["q"] = FloatTensor.Of(c.Query, 2, 9, 32),
            ["k"] = FloatTensor.Of(c.Key, 2, 9, 16),
            ["v"] = FloatTensor.Of(c.Value, 2, 9, 12),
        }, "y");
        TensorAssert.Close(got["y"].Data, c.Reference(withPast: false).Output, Tolerance.Float32, "y only");
    }
}
