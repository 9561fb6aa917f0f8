using NUnit.Framework;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Tests.Llama2c;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Generation;

/// <summary>The generation loop on the real stories260K weights, with state-based attention rules.</summary>
[TestFixture]
public class GeneratorTests
{
    private static readonly Lazy<Llama2cCheckpoint> Checkpoint = new(() => Llama2cCheckpoint.Load(LlamaGraphTests.CheckpointPath));

    private static DecoderModel Model(string rule) =>
        DecoderModel.FromExported(LlamaGraphBuilder.Build(Checkpoint.Value), AttentionRule.Parse(rule), intraOpThreads: 1);

    private static readonly int[] Prompt = [1, 403, 407, 261, 378, 293, 343, 271, 430, 259, 296, 285];

    private static List<int> Run(DecoderModel model, GeneratorParams p, IReadOnlyList<IReadOnlyList<int>> prompts, int? pieces = null, int row = 0)
    {
        using var g = new Generator(model, p, prompts);
        if (pieces is { } chunk) g.PrefillInPieces(chunk);
        else g.Prefill();
        while (!g.IsDone) g.GenerateNextToken();
        return g.Sequence(row).ToList();
    }

    [TestCase("linear-elu")]
    [TestCase("softmax")]
    public void PrefillAtOnceAndTokenByTokenGiveIdenticalTokens(string rule)
    {
        using var model = Model(rule);
        var p = new GeneratorParams(MaxNewTokens: 24);
        var whole = Run(model, p, [Prompt]);
        var stepwise = Run(model, p, [Prompt], pieces: 1);
        var uneven = Run(model, p, [Prompt], pieces: 5);
        Assert.That(whole, Has.Count.EqualTo(Prompt.Length + 24));
        Assert.That(stepwise, Is.EqualTo(whole));
        Assert.That(uneven, Is.EqualTo(whole));
    }

    [TestCase("linear-elu")]
    [TestCase("window:8,sinks=2")]
    [TestCase("hybrid:8")]
    [TestCase("segment:4")]
    [TestCase("summary:moving=4")]
    public void StateUpdatedInPlaceGivesTheLogitsOfSwappedBuffers(string rule)
    {
        using var model = Model(rule);
        var fixedSize = model.Info.State.Where(s => !s.Grows).Select(s => s.Past).ToList();
        Assert.That(fixedSize, Is.Not.Empty);
        Assert.That(model.InPlaceStates, Is.EquivalentTo(fixedSize), "every state tensor is our operators' own");

        List<float[]> Logits(bool inPlace)
        {
            using var g = new Generator(model, new GeneratorParams(MaxNewTokens: 12, StateInPlace: inPlace), [Prompt, Prompt.Reverse().ToArray()]);
            var seen = new List<float[]>();
            g.Prefill();
            while (!g.IsDone)
            {
                g.GenerateNextToken();
                seen.Add(g.Logits(0).ToArray().Concat(g.Logits(1).ToArray()).ToArray());
            }
            return seen;
        }
        var swapped = Logits(inPlace: false);
        var inPlace = Logits(inPlace: true);
        Assert.That(inPlace, Has.Count.EqualTo(12));
        for (var step = 0; step < swapped.Count; step++)
        {
            Assert.That(inPlace[step], Is.EqualTo(swapped[step]), $"step {step}");
        }
    }

    [Test]
    public void SeededSamplingRepeatsAndDiffersAcrossSeeds()
    {
        using var model = Model("linear-elu");
        var a = Run(model, new GeneratorParams(20, Sampling: new SamplingOptions(Temperature: 1f, TopK: 40, TopP: 0.9f, Seed: 7)), [Prompt]);
        var b = Run(model, new GeneratorParams(20, Sampling: new SamplingOptions(Temperature: 1f, TopK: 40, TopP: 0.9f, Seed: 7)), [Prompt]);
        var c = Run(model, new GeneratorParams(20, Sampling: new SamplingOptions(Temperature: 1f, TopK: 40, TopP: 0.9f, Seed: 8)), [Prompt]);
        Assert.That(b, Is.EqualTo(a));
        Assert.That(c, Is.Not.EqualTo(a));
    }

    [Test]
    public void BatchRowsEqualSingleRuns()
    {
        using var model = Model("linear-elu");
        int[] other = [1, 300, 301, 302, 303, 304, 305, 306, 307, 308, 309, 310];
        var p = new GeneratorParams(10);
        using var g = new Generator(model, p, [Prompt, other]);
        g.Prefill();
        while (!g.IsDone) g.GenerateNextToken();
        Assert.That(g.Sequence(0), Is.EqualTo(Run(model, p, [Prompt])));
        Assert.That(g.Sequence(1), Is.EqualTo(Run(model, p, [other])));
    }

    [Test]
    public void StopsAtAStopTokenAndStreamsWhatItGenerates()
    {
        using var model = Model("linear-elu");
        var free = Run(model, new GeneratorParams(12), [Prompt]);
        var stop = free[Prompt.Length + 3];
        using var g = new Generator(model, new GeneratorParams(12, StopTokens: new HashSet<int> { stop }), [Prompt]);
        var streamed = new List<int>();
        g.TokenGenerated += (_, t) => streamed.Add(t);
        g.Prefill();
        while (!g.IsDone) g.GenerateNextToken();
        var firstStop = free.IndexOf(stop, Prompt.Length);
        Assert.That(g.Sequence(0), Is.EqualTo(free.Take(firstStop + 1)));
        Assert.That(streamed, Is.EqualTo(free.Skip(Prompt.Length).Take(firstStop + 1 - Prompt.Length)));
    }

    [Test]
    [NonParallelizable] // counts the allocations of every thread, so tests running beside it would be counted too
    public void DecodeStepsDoNotAllocateMoreAsTheSequenceGrows()
    {
        using var model = Model("linear-elu");
        using var g = new Generator(model, new GeneratorParams(700), [Prompt]);
        g.Prefill();
        DecodeAllocations.AssertFlat(g, "linear-elu, stories260K");
    }

    [TestCase("linear-elu")]
    [TestCase("hybrid:4")]
    [TestCase("segment:4")]
    [TestCase("window:4")]
    [TestCase("window:4,sinks=2")]
    [TestCase("summary:moving=3")]
    [TestCase("summary:ema=0.5")]
    [NonParallelizable] // counts the allocations of every thread
    public void ADecodeStepAllocatesAlmostNothing(string rule)
    {
        // HybridAttention and SegmentAttention once allocated ~210 bytes per layer per step checking their past-state group.
        using var model = DecoderModel.Default(AttentionRule.Parse(rule), intraOpThreads: 1);
        using var g = new Generator(model, new GeneratorParams(900), [Prompt]);
        g.Prefill();
        // Long enough for tiered JIT to finish promoting the step's methods (it starts after ~100 ms of steady calls).
        DecodeAllocations.Measure(g, 500);
        // The smallest of three windows: background work of the runtime (tiered JIT, thread pool) allocates now and
        // then on other threads, which this process-wide count sees; an allocation in every step shows in all three.
        var perStep = Enumerable.Range(0, 3).Min(_ => DecodeAllocations.Measure(g, 100) / 100);
        // What remains is the growing token list (amortised doubling): a few bytes a step.
        Assert.That(perStep, Is.LessThan(64), $"{rule}: {perStep} bytes per decode step");
    }

    [Test]
    public void RejectsBadPrompts()
    {
        using var model = Model("linear-elu");
        Assert.That(Assert.Throws<ArgumentException>(() => new Generator(model, new GeneratorParams(1), [[1, 2], [3]]))!.Message,
            Does.Contain("different lengths (2, 1)").And.Contain("one position for all rows"), "this form of the model computes one position for the batch");
        Assert.That(Assert.Throws<ArgumentException>(() => new Generator(model, new GeneratorParams(1), [[1, 9999]]))!.Message, Does.Contain("outside the vocabulary [0, 512)"));
        Assert.That(Assert.Throws<ArgumentException>(() => new Generator(model, new GeneratorParams(1, Sampling: new SamplingOptions(TopP: 0f)), [[1]]))!.Message, Does.Contain("top-p"));
    }
}
