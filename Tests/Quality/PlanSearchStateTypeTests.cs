using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>The plan search on stories260K with half-precision state candidates, and measured several runs at a time.</summary>
[TestFixture]
public class PlanSearchStateTypeTests
{
    private const int Rows = 2, Seq = 48;

    private static long[] Ids => StoriesModel.Ids(9, Rows * Seq);

    private static readonly AttentionRule[] Candidates = [new WindowRule(2, 0), new WindowRule(4, 0), new WindowRule(8, 0), new HybridRule(2, "mean"), new LinearRule("elu_plus_one")];

    [Test]
    public void HalfStateCandidatesAreTheRulesInFloat16AtHalfTheBytes()
    {
        var f16 = PlanSearch.InStateTypes(Candidates, [TensorProto.Types.DataType.Float16]);
        Assert.That(f16.Select(r => r.Spelling), Is.EqualTo(Candidates.Select(r => r.Spelling + ",state=float16")));
        var both = PlanSearch.InStateTypes(Candidates, [TensorProto.Types.DataType.Float, TensorProto.Types.DataType.Float16]);
        Assert.That(both, Has.Count.EqualTo(2 * Candidates.Length));
        Assert.That(PlanSearch.DefaultCandidates([TensorProto.Types.DataType.Float16]), Has.Count.EqualTo(PlanSearch.DefaultCandidates().Count));
        for (var i = 0; i < Candidates.Length; i++)
        {
            Assert.That(StoriesModel.Quality.Swap(f16[i]).Report.StateBytesPerSequence, Is.EqualTo(StoriesModel.Quality.Swap(Candidates[i]).Report.StateBytesPerSequence / 2));
        }
    }

    [Test]
    public void SeveralRunsAtATimeChooseWhatOneAtATimeChooses()
    {
        var candidates = PlanSearch.InStateTypes(Candidates, [TensorProto.Types.DataType.Float, TensorProto.Types.DataType.Float16]);
        // Room for window:4 in float16 (5 layers x 4 KV heads x 2 x 4 tokens x 8 x 2 bytes = 2,560) but not in float32.
        const long budget = 2560;
        var one = new PlanSearch(StoriesModel.Quality, Ids, Rows, Seq / 2, workers: 1).Search(candidates, budget, wholePlans: 2, maxMoves: 4);
        var two = new PlanSearch(StoriesModel.Quality, Ids, Rows, Seq / 2, workers: 2).Search(candidates, budget, wholePlans: 2, maxMoves: 4);
        Assert.That(two.Rule.Spelling, Is.EqualTo(one.Rule.Spelling));
        Assert.That(two.Kl, Is.EqualTo(one.Kl), "the same runs give the same numbers whichever thread runs them");
        Assert.That(one.Bytes, Is.LessThanOrEqualTo(budget));
        Assert.That(one.Layers.Any(o => o.Rule is StateTypeRule), "a budget that fits half-precision windows only is spent on them");
    }
}
