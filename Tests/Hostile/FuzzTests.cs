using NUnit.Framework;
using OnnxAttention.Fuzz;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Hostile;

/// <summary>
/// A bounded run of the project's fuzzer (tools/OnnxAttention.Fuzz) with a fixed seed, in process: mutated copies of
/// tiny decoders, the fixture decoders and the hostile files, each loaded, swapped, saved and run. Every case must be
/// refused with our error or ORT's, or run. A failure names the case; `onnx-attention-fuzz replay --seed S --case N`
/// writes it out. Longer runs: see the README (Reliability).
/// </summary>
[TestFixture]
public class FuzzTests
{
    public const int Seed = 20261207;
    private const int Cases = 300;

    [Test]
    public void MutatedModelsAreRefusedCleanlyOrRun()
    {
        var scratch = Path.Combine(Path.GetTempPath(), "onnx-attention-fuzz-tests", Guid.NewGuid().ToString("N"));
        var harness = new FuzzHarness(FuzzCorpus.Build(Path.Combine(TestPaths.Shared, "fixtures")), scratch);
        var counts = Enum.GetValues<FuzzOutcome>().ToDictionary(o => o, _ => 0);
        var defects = new List<string>();
        try
        {
            for (var c = 0; c < Cases; c++)
            {
                FuzzResult? result = null;
                var thread = new Thread(() => result = harness.Run(Seed, c), 64 << 20) { IsBackground = true };
                thread.Start();
                if (!thread.Join(TimeSpan.FromSeconds(120)))
                {
                    Assert.Fail($"case {c} (seed {Seed}) hangs");
                }
                counts[result!.Outcome]++;
                if (result.IsDefect) defects.Add($"case {c}: {result.Outcome} {result.Detail} [seed {result.Seed}; {result.Mutations}]");
            }
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
        TestContext.Out.WriteLine($"seed {Seed}, {Cases} cases: {string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.That(defects, Is.Empty, $"replay one with: onnx-attention-fuzz replay --seed {Seed} --case N");
        Assert.That(counts[FuzzOutcome.Ran], Is.GreaterThan(0), "some mutants still run: the harness reaches ORT");
        Assert.That(counts[FuzzOutcome.Refused], Is.GreaterThan(0));
    }
}
