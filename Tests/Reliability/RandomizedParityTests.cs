using NUnit.Framework;
using OnnxAttention.Tests.LinearAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// Property test: for shapes and options drawn from a seeded generator, the ORT-hosted kernel equals the
/// reference and the split run equals the whole run. A failure names its seed, so it can be replayed alone.
/// </summary>
[TestFixture]
public class RandomizedParityTests
{
    private static readonly string[] Maps = ["elu_plus_one", "relu", "identity"];

    public static IEnumerable<int> Seeds() => Enumerable.Range(1000, 40);

    private static LinearAttentionCase Draw(int seed)
    {
        var r = new Random(seed);
        var kv = r.Next(1, 4);
        var map = Maps[r.Next(Maps.Length)];
        return new LinearAttentionCase(
            Batch: r.Next(1, 4), Seq: r.Next(1, 90), QHeads: kv * r.Next(1, 4), KvHeads: kv,
            Dk: r.Next(1, 70), Dv: r.Next(1, 70), FeatureMap: map, Normalize: map == "elu_plus_one" ? r.Next(2) == 0 : r.Next(4) == 0,
            Scale: (float)(0.05 + r.NextDouble()), Seed: seed);
    }

    [TestCaseSource(nameof(Seeds))]
    public void KernelEqualsReferenceAndSplitEqualsWhole(int seed)
    {
        var c = Draw(seed);
        using var session = new LinearAttentionSession(c.Options, withPast: true);
        var whole = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape);
        var want = c.Reference(withPast: true);
        TensorAssert.Close(whole.Y, want.Output, Tolerance.Float32, $"seed {seed} ({c}): output");
        TensorAssert.Close(whole.State, want.State, Tolerance.Float32, $"seed {seed} ({c}): state");

        var cut = new Random(seed).Next(0, c.Seq + 1);
        int qw = c.QHeads * c.Dk, kw = c.KvHeads * c.Dk, vw = c.KvHeads * c.Dv;
        var first = session.Run(c.Batch, cut, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, 0, cut), SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, 0, cut),
            SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, 0, cut), c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape,
            queryShape: [c.Batch, cut, qw], keyShape: [c.Batch, cut, kw], valueShape: [c.Batch, cut, vw]);
        var rest = c.Seq - cut;
        var second = session.Run(c.Batch, rest, SequenceSlices.Slice(c.Query, c.Batch, c.Seq, qw, cut, rest), SequenceSlices.Slice(c.Key, c.Batch, c.Seq, kw, cut, rest),
            SequenceSlices.Slice(c.Value, c.Batch, c.Seq, vw, cut, rest), first.State, first.Normalizer, c.StateShape, c.NormalizerShape,
            queryShape: [c.Batch, rest, qw], keyShape: [c.Batch, rest, kw], valueShape: [c.Batch, rest, vw]);
        TensorAssert.Close(second.State, whole.State, Tolerance.Float32Reordered, $"seed {seed} ({c}): split at {cut}, final state");
    }
}
