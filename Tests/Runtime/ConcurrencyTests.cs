using NUnit.Framework;
using OnnxAttention.Tests.LinearAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Runtime;

/// <summary>Kernels are shared by every thread that runs a session, and split work over ORT's pool.</summary>
[TestFixture]
public class ConcurrencyTests
{
    private static readonly LinearAttentionCase Case = new(4, 40, 8, 2, 32, 32);

    [Test]
    public void IntraOpThreadPoolGivesTheSameBitsAsOneThread()
    {
        var c = Case;
        using var single = new LinearAttentionSession(c.Options, withPast: true, intraOpThreads: 1);
        using var pooled = new LinearAttentionSession(c.Options, withPast: true, intraOpThreads: 2);
        var a = single.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape);
        var b = pooled.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape);
        // Each (batch, KV head) item does the same float operations in the same order on whatever thread.
        Assert.That(b.Y, Is.EqualTo(a.Y));
        Assert.That(b.State, Is.EqualTo(a.State));
    }

    [Test]
    public void ManyThreadsOnOneSessionGetSingleThreadedResults()
    {
        var c = Case;
        using var session = new LinearAttentionSession(c.Options, withPast: true, intraOpThreads: 2);
        var expected = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape);
        var q = c.Query; var k = c.Key; var v = c.Value; var s = c.PastState; var z = c.PastNormalizer;
        var mismatches = 0;
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ =>
        {
            for (var i = 0; i < 25; i++)
            {
                var got = session.Run(c.Batch, c.Seq, q, k, v, s, z, c.StateShape, c.NormalizerShape);
                if (!got.Y.AsSpan().SequenceEqual(expected.Y) || !got.State.AsSpan().SequenceEqual(expected.State))
                {
                    Interlocked.Increment(ref mismatches);
                }
            }
        });
        Assert.That(mismatches, Is.Zero);
    }

    [Test]
    public void ManySessionsShareTheRegisteredDomain()
    {
        var c = new LinearAttentionCase(1, 3, 2, 2, 4, 4);
        var want = c.Reference(withPast: false).Output;
        for (var i = 0; i < 20; i++)
        {
            using var session = new LinearAttentionSession(c.Options, withPast: false);
            TensorAssert.Close(session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value).Y, want, Tolerance.Float32, $"session {i}");
        }
    }
}
