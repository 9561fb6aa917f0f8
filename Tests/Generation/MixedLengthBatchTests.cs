using NUnit.Framework;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Tests.Llama2c;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Generation;

/// <summary>
/// A batch of prompts of different lengths: prefilled row by row, then decoded together with each row at its own
/// position. Every row must get what the same prompt gets alone in its own generator: the same logits after the
/// prefill and after every step, and the same greedy tokens.
/// </summary>
[TestFixture]
public class MixedLengthBatchTests
{
    private static readonly Lazy<Llama2cCheckpoint> Stories = new(() => Llama2cCheckpoint.Load(LlamaGraphTests.CheckpointPath));

    private static readonly Lazy<Llama2cCheckpoint> Tiny = new(() => DefaultCheckpoint.Create());

    // Lengths 7, 2, 11: longer and shorter than the windows and segments below, so rows sit in different ring slots and segments.
    private static readonly int[][] Prompts =
    [
        [1, 403, 407, 261, 378, 293, 343],
        [1, 284],
        [1, 403, 407, 261, 378, 293, 343, 271, 430, 259, 296],
    ];

    private const int NewTokens = 8;

    private static DecoderModel Model(string checkpoint, string rule) =>
        DecoderModel.FromCheckpoint(checkpoint == "stories260K" ? Stories.Value : Tiny.Value, AttentionRule.Parse(rule), intraOpThreads: 1);

    private static (List<int>[] Sequences, List<float[]>[] Logits) Generate(DecoderModel model, int[][] prompts, GeneratorParams p, int? chunk = null)
    {
        var trace = GenerationTrace.Run(model, prompts, p, chunk);
        return (trace.Sequences, trace.Logits);
    }

    private static void AssertRowsMatchAlone(DecoderModel model, GeneratorParams p, string what, int? chunk = null)
    {
        var batch = GenerationTrace.Run(model, Prompts, p, chunk);
        for (var r = 0; r < Prompts.Length; r++)
        {
            batch.AssertRowMatches(r, GenerationTrace.Run(model, [Prompts[r]], p), 0, $"{what}: batch vs alone");
        }
        Assert.That(batch.Sequences.Select(s => s.Count), Is.EqualTo(Prompts.Select(q => q.Length + NewTokens)));
    }

    [Test]
    public void EachRowGetsWhatItsPromptGetsAlone(
        [Values("tiny", "stories260K")] string checkpoint,
        [Values("linear-elu", "window:4", "hybrid:4", "summary:moving=3", "segment:4")] string rule)
    {
        using var model = Model(checkpoint, rule);
        Assert.That(model.Info.PositionsPerRow, Is.True, "the llama2.c form the host builds takes a position per row");
        AssertRowsMatchAlone(model, new GeneratorParams(NewTokens), $"{checkpoint}, {rule}");
    }

    [TestCase("linear-elu")]
    [TestCase("hybrid:4,compress=mean")]
    [TestCase("summary:cumulative")]
    public void TwoBuffersPerStateAndAPrefillInPiecesGiveTheSameRows(string rule)
    {
        // Rows of 7, 2 and 11 tokens in pieces of 3 take 3, 1 and 4 calls: their states end in different buffers.
        using var model = Model("tiny", rule);
        AssertRowsMatchAlone(model, new GeneratorParams(NewTokens, StateInPlace: false), $"{rule}, two buffers, pieces of 3", chunk: 3);
        AssertRowsMatchAlone(model, new GeneratorParams(NewTokens), $"{rule}, in place, pieces of 3", chunk: 3);
    }

    [Test]
    public void SampledRowsMatchTheirPromptAloneWithTheRowsSeed()
    {
        using var model = Model("stories260K", "window:4");
        var sampling = new SamplingOptions(Temperature: 0.8f, TopK: 20, Seed: 5);
        // Each row samples with Seed + row, so row r alone must be given that seed to draw the same tokens.
        var (batch, _) = Generate(model, Prompts, new GeneratorParams(NewTokens, Sampling: sampling));
        for (var r = 0; r < Prompts.Length; r++)
        {
            var (alone, _) = Generate(model, [Prompts[r]], new GeneratorParams(NewTokens, Sampling: sampling with { Seed = sampling.Seed + r }));
            Assert.That(batch[r], Is.EqualTo(alone[0]), $"row {r}");
        }
    }

    [Test]
    public void TheSoftmaxRuleRefusesMixedLengthsByNameAndKeepsEqualLengths()
    {
        using var model = Model("tiny", "softmax");
        Assert.That(model.Info.PositionsPerRow, Is.False);
        var e = Assert.Throws<ArgumentException>(() => new Generator(model, new GeneratorParams(2), Prompts));
        Assert.That(e!.Message, Does.Contain("different lengths (7, 2, 11)").And.Contain("'softmax' rule").And.Contain("KV cache"));

        int[][] equal = [Prompts[0], Prompts[2][..7]];
        var (sequences, logits) = Generate(model, equal, new GeneratorParams(NewTokens));
        for (var r = 0; r < equal.Length; r++)
        {
            var (alone, aloneLogits) = Generate(model, [equal[r]], new GeneratorParams(NewTokens));
            Assert.That(sequences[r], Is.EqualTo(alone[0]), $"softmax, equal lengths, row {r}");
            TensorAssert.Close(logits[r][^1], aloneLogits[0][^1], Tolerance.Float32Logits, $"softmax, equal lengths, row {r}, last logits");
        }
    }

    [Test]
    public void AModelThatComputesOnePositionForAllRowsRefusesMixedLengths()
    {
        // The form without cache: positions are Range(0, S) offset by one shared number.
        using var model = DecoderModel.FromExported(LlamaGraphBuilder.Build(Tiny.Value), AttentionRule.Parse("linear-elu"), intraOpThreads: 1);
        Assert.That(model.Info.PositionsPerRow, Is.False);
        var e = Assert.Throws<ArgumentException>(() => new Generator(model, new GeneratorParams(2), Prompts));
        Assert.That(e!.Message, Does.Contain("different lengths (7, 2, 11)").And.Contain("one position for all rows"));
    }

    [TestCase("linear-elu", true)]
    [TestCase("segment:4", true)]
    [TestCase("softmax", false)]
    public void TheSwapRecordsWhetherPositionsMayDifferPerRow(string rule, bool perRow)
    {
        var kvForm = LlamaGraphBuilder.Build(Tiny.Value, new LlamaGraphOptions { KvCache = true, PositionIdsInput = true });
        Assert.That(AttentionSwapper.Swap(kvForm, AttentionRule.Parse(rule)).PositionsPerRow, Is.EqualTo(perRow), "KV-cache form with position_ids");
        Assert.That(kvForm.MetadataProps.Single(p => p.Key == ModelContract.PositionsKey).Value, Is.EqualTo(perRow ? "per_row" : "shared"));
        var plain = LlamaGraphBuilder.Build(Tiny.Value);
        Assert.That(AttentionSwapper.Swap(plain, AttentionRule.Parse(rule)).PositionsPerRow, Is.False, "form without cache: Range positions");
    }

    [Test]
    [NonParallelizable] // counts the allocations of every thread
    public void AMaskFedEveryStepKeepsDecodeAllocationsSmallAndFlat()
    {
        // The KV-cache form with attention_mask and position_ids inputs: every rule keeps the mask, so each decode
        // step binds a mask one column longer (a view over one buffer) and the rows' position ids.
        var form = LlamaGraphBuilder.Build(Tiny.Value, new LlamaGraphOptions { KvCache = true, AttentionMaskInput = true, PositionIdsInput = true });
        using var model = DecoderModel.FromExported(form, AttentionRule.Parse("window:4"), intraOpThreads: 1);
        Assert.That(model.Info.PaddingInput, Is.EqualTo(LlamaGraphBuilder.AttentionMask));
        using var g = new Generator(model, new GeneratorParams(700), Prompts);
        g.Prefill();
        DecodeAllocations.AssertFlat(g, "window:4 fed attention_mask, rows of 7, 2 and 11 tokens");
    }

    [Test]
    [NonParallelizable] // counts the allocations of every thread
    public void MixedLengthDecodeStepsDoNotAllocateMoreAsTheSequenceGrows()
    {
        using var model = Model("tiny", "linear-elu");
        using var g = new Generator(model, new GeneratorParams(700), Prompts);
        g.Prefill();
        DecodeAllocations.AssertFlat(g, "linear-elu, rows of 7, 2 and 11 tokens");
    }
}
