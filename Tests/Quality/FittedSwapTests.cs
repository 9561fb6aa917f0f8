using NUnit.Framework;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>
/// On stories260K: the tap reads each layer's real attention, and a swap with fitted Hedgehog maps computes
/// linear attention on those features, with constant state, the same whole or token by token.
/// </summary>
[TestFixture]
public class FittedSwapTests
{
    private const int Rows = 2, Seq = 24;

    private static long[] Ids => StoriesModel.Ids(3, Rows * Seq);

    [Test]
    public void TheTapReadsEachLayersCausalSoftmaxAttention()
    {
        var layers = AttentionTap.Capture(StoriesModel.QualityOnOrtThreads, Ids, Rows);
        Assert.That(layers, Has.Count.EqualTo(5));
        foreach (var L in layers)
        {
            Assert.That((L.Rows, L.Length, L.QueryHeads, L.KvHeads, L.HeadDim, L.ValueHeadDim), Is.EqualTo((Rows, Seq, 8, 4, 8, 8)));
            var want = SoftmaxAttentionReference.Compute(L.Query, L.Key, L.Value, new(Rows, 8, 4, Seq, Seq, 8, 8), L.Scale, causal: true);
            TensorAssert.Close(L.Output, want, Tolerance.Float32, "the captured output is softmax attention of the captured query, key and value");
        }
    }

    [Test]
    public void AFittedLayerIsLinearAttentionOnItsFeaturesWithConstantState()
    {
        var quality = StoriesModel.QualityOnOrtThreads;
        var layer = AttentionTap.Capture(quality, Ids, Rows)[0];
        const int m = 3;
        var fit = new FeatureMapFit(layer, m, window: 0).Fit(steps: 3);
        var rule = new LayeredRule([new(new FittedLinearRule(fit.Query, fit.Key), [0]), new(new SoftmaxRule(), null)]);
        var (model, report) = quality.Swap(rule);
        // 4 KV heads, each S [2m, 8] and z [2m], float32.
        Assert.That(report.Layers[0].StateBytesPerSequence, Is.EqualTo(4 * (2 * m * 8 + 2 * m) * 4));
        Assert.That(report.Layers[0].Rule.Spelling, Is.EqualTo("linear-hedgehog:3"));

        var node = model.Graph.Node.Single(n => n.OpType == "LinearAttention");
        model.Graph.Output.Add(new ValueInfoProto
        {
            Name = node.Output[0],
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
        });
        using var runner = new SwappedModelRunner(model);
        var got = runner.Output(node.Output[0], Ids, Rows, Seq); // [rows, T, Hq * dv]
        double[] parameters = [.. fit.Query.Weight, .. fit.Query.Bias, .. fit.Key.Weight, .. fit.Key.Bias, .. new float[8]];
        var want = FittedAttentionReference.Outputs(layer, m, 0, parameters); // [rows, Hq, T, dv]
        var reordered = new double[want.Length];
        for (var b = 0; b < Rows; b++)
            for (var h = 0; h < 8; h++)
                for (var t = 0; t < Seq; t++)
                    Array.Copy(want, ((b * 8 + h) * Seq + t) * 8, reordered, ((b * Seq + t) * 8 + h) * 8, 8);
        TensorAssert.Close(got, reordered, Tolerance.Float32, "layer 0's output");

        var whole = runner.Logits(Ids, Rows, chunk: Seq);
        var stepwise = runner.Logits(Ids, Rows, chunk: 1);
        var split = runner.Logits(Ids, Rows, chunk: 7);
        TensorAssert.Close(stepwise, whole, Tolerance.Float32Logits, "token by token");
        TensorAssert.Close(split, whole, Tolerance.Float32Logits, "in pieces of 7");
    }

    [Test]
    public void AFittedHybridLayerSharesTheWindowsNormaliserWithItsLinearMemory()
    {
        var quality = StoriesModel.QualityOnOrtThreads;
        var layer = AttentionTap.Capture(quality, Ids, Rows)[1];
        const int m = 2, window = 5;
        var fit = new FeatureMapFit(layer, m, window).Fit(steps: 3);
        var rule = new LayeredRule([new(new FittedHybridRule(window, fit.Query, fit.Key, fit.Mix), [1]), new(new SoftmaxRule(), null)]);
        var (model, report) = quality.Swap(rule);
        // 4 KV heads: a ring of 5 keys and values of 8, nu [2m] and mu [2m, 8], float32; the position is counted by the model.
        Assert.That(report.Layers[1].StateBytesPerSequence, Is.EqualTo(4 * (2 * window * 8 + 2 * m + 2 * m * 8) * 4));
        Assert.That(report.Layers[1].Rule.Spelling, Is.EqualTo("hybrid-hedgehog:5,2"));

        var node = model.Graph.Node.Single(n => n.OpType == "HybridAttention");
        model.Graph.Output.Add(new ValueInfoProto
        {
            Name = node.Output[0],
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
        });
        using var runner = new SwappedModelRunner(model);
        var got = runner.Output(node.Output[0], Ids, Rows, Seq);
        double[] parameters = [.. fit.Query.Weight, .. fit.Query.Bias, .. fit.Key.Weight, .. fit.Key.Bias, .. fit.Mix.Select(x => MathF.Log(x))];
        var want = FittedAttentionReference.Outputs(layer, m, window, parameters);
        var reordered = new double[want.Length];
        for (var b = 0; b < Rows; b++)
            for (var h = 0; h < 8; h++)
                for (var t = 0; t < Seq; t++)
                    Array.Copy(want, ((b * 8 + h) * Seq + t) * 8, reordered, ((b * Seq + t) * 8 + h) * 8, 8);
        TensorAssert.Close(got, reordered, Tolerance.Float32, "layer 1's output");

        var whole = runner.Logits(Ids, Rows, chunk: Seq);
        TensorAssert.Close(runner.Logits(Ids, Rows, chunk: 1), whole, Tolerance.Float32Logits, "token by token");
    }

    [Test]
    public void FittedRulesAreNotSpelledOnTheCommandLine()
    {
        foreach (var spelling in new[] { "linear-hedgehog:4", "hybrid-hedgehog:4,2" })
        {
            var e = Assert.Throws<FormatException>(() => AttentionRule.Parse(spelling))!;
            Assert.That(e.Message, Does.Contain("calibrate"));
        }
    }

    [Test]
    public void MapsFittedToOtherHeadsAreRefusedByTheSwap()
    {
        var quality = StoriesModel.QualityOnOrtThreads;
        var map = new FeatureProjection(2, 8, 2, new float[2 * 8 * 2], new float[2 * 2]);
        var e = Assert.Throws<GraphException>(() => quality.Swap(new FittedLinearRule(map, map)))!;
        Assert.That(e.Message, Does.Contain("fitted to 2 query / 2 KV heads"));
    }
}
