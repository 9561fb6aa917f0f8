using NUnit.Framework;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using OnnxAttention.Host.Quality.Tuning;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>
/// <c>window:W,keys=ids</c> on the training side is an exact window (the keys it recomputes are the layer's own, with
/// the tuned projections), and the search offers it only where the swap accepts it.
/// </summary>
[TestFixture]
public class IdWindowTuningTests
{
    private static readonly Lazy<Llama2cCheckpoint> Checkpoint = new(() => Llama2cCheckpoint.Load(Llama2c.LlamaGraphTests.CheckpointPath));

    private static readonly AttentionRule[] Plan = [new RecomputedWindowRule(7), new WindowRule(5, 0), new WindowRule(6, 2), new WindowRule(9, 0), new SoftmaxRule()];

    private static LayeredRule Layered(IReadOnlyList<AttentionRule> rules) => new(rules.Select((r, l) => new LayeredRule.Entry(r, [l])).ToList());

    [Test]
    public void TheTrainingSideMatchesTheSwappedModelWithTunedProjections()
    {
        const int rows = 2, seq = 30;
        long[] ids = [.. Seeded.Uniform(21, rows * seq, 0, 511.99f).Select(x => (long)x)];
        Assert.That(EndToEndModel.Supports(Plan[0]), Is.True);
        var model = new EndToEndModel(Checkpoint.Value, Plan, projections: true);
        var p = model.GetParameters();
        var noise = Seeded.Uniform(22, p.Length, -0.02f, 0.02f);
        for (var i = 0; i < p.Length; i++) p[i] += noise[i];
        model.SetParameters(p);
        Assert.That(model.Rule.Spelling, Is.EqualTo(Layered(Plan).Spelling), "the tuned plan keeps keys=ids");
        var changed = new QualityModel(model.WithProjections(StoriesModel.Quality.Original), intraOpThreads: 1);
        TensorAssert.Close(model.Logits(ids, rows), changed.Logits(model.Rule, ids, rows), new Tolerance(2e-4, 2e-4),
            "training side vs ORT: layer 0's keys recomputed from ids with the tuned wk and wv");
    }

    [Test]
    public void TheSearchOffersItOnlyInLayerZero()
    {
        var lists = IdWindowCandidates.PerLayer(StoriesModel.Quality, [64, 512]);
        Assert.That(lists[0].Select(r => r.Spelling), Is.EqualTo(new[] { "window:64,keys=ids", "window:512,keys=ids" }));
        Assert.That(lists.Skip(1), Is.All.Empty, "layers 1-4 read layer 0's attention");
        var joined = IdWindowCandidates.Join([[new WindowRule(3, 0)], [], [], [], []], lists)!;
        Assert.That(joined[0].Select(r => r.Spelling), Is.EqualTo(new[] { "window:3", "window:64,keys=ids", "window:512,keys=ids" }));
    }
}
