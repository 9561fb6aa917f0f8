using NUnit.Framework;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Diagnostics;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Tests.Reliability;

/// <summary>A long generation on a small model: memory and native handles stay flat.</summary>
[TestFixture]
[Category("Soak")]
public class SoakTests
{
    private static int OpenFileDescriptors() => Directory.Exists("/proc/self/fd") ? Directory.GetFiles("/proc/self/fd").Length : -1;

    [Test]
    public void HundredThousandDecodeStepsKeepMemoryAndHandlesFlat()
    {
        const int steps = 100_000;
        using var model = DecoderModel.Default(AttentionRule.Parse("linear-elu"), intraOpThreads: 1);
        using var g = new Generator(model, new GeneratorParams(steps, Sampling: new SamplingOptions(Temperature: 1f, Seed: 3)), [[1, 2, 3]]);
        g.Prefill();
        var samples = new List<(int Step, long Rss, int Fds)>();
        for (var i = 0; i < steps; i++)
        {
            g.GenerateNextToken();
            if ((i + 1) % 10_000 == 0)
            {
                samples.Add((i + 1, ProcessMemory.Read().ResidentBytes, OpenFileDescriptors()));
            }
        }
        TestContext.Out.WriteLine(string.Join("\n", samples.Select(s => $"step {s.Step}: RSS {s.Rss / 1e6:F1} MB, fds {s.Fds}")));
        Assert.That(g.Sequence(0), Has.Count.EqualTo(3 + steps));
        var afterWarmup = samples[1];
        var last = samples[^1];
        // The token list itself grows by 400 KB over the run; everything else must stay put.
        Assert.That(last.Rss - afterWarmup.Rss, Is.LessThan(16L << 20), "resident memory grew by more than 16 MB between 20k and 100k steps");
        Assert.That(last.Fds, Is.EqualTo(afterWarmup.Fds), "file descriptors leaked");
    }
}
