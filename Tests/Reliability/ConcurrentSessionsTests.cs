using NUnit.Framework;
using OnnxAttention.Tests.Native;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>Every operator at once: many threads on one session, and several sessions side by side.</summary>
[TestFixture]
public class ConcurrentSessionsTests
{
    [Test]
    public void ThreadsAndSessionsTogetherGiveSingleThreadedResults()
    {
        var all = AllOperatorsModel.Build();
        var outputs = all.Outputs.ToArray();
        using var reference = new TypedModelRunner(all.Model, intraOpThreads: 1);
        var want = reference.Run(all.Inputs, outputs);

        var sessions = Enumerable.Range(0, 3).Select(i => new TypedModelRunner(all.Model, intraOpThreads: i + 1)).ToList();
        try
        {
            var mismatches = 0;
            var errors = new System.Collections.Concurrent.ConcurrentBag<Exception>();
            Parallel.For(0, 6, new ParallelOptions { MaxDegreeOfParallelism = 6 }, worker =>
            {
                var runner = sessions[worker % sessions.Count];
                for (var i = 0; i < 10; i++)
                {
                    try
                    {
                        var got = runner.Run(all.Inputs, outputs);
                        if (outputs.Any(o => !((System.Collections.IStructuralEquatable)got[o].Data).Equals(want[o].Data, System.Collections.StructuralComparisons.StructuralEqualityComparer)))
                        {
                            Interlocked.Increment(ref mismatches);
                        }
                    }
                    catch (Exception e)
                    {
                        errors.Add(e);
                    }
                }
            });
            Assert.That(errors, Is.Empty);
            Assert.That(mismatches, Is.Zero, "runs differed from the single-threaded result");
        }
        finally
        {
            foreach (var s in sessions) s.Dispose();
        }
    }
}
