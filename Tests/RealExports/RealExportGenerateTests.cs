using NUnit.Framework;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.RealExports;

/// <summary>
/// Every real-export decoder generates a batch of prompts of different lengths, each row giving the tokens it gives
/// alone: with window:16 and linear-elu (rows prefilled alone, then decoded at their own positions; GPT-2's position
/// lookup counted from the cache length reads each row's position after the swap) and with softmax (the KV cache
/// has one length, so the prompts are padded as the exporter's runtime pads them, left for Optimum and GPT-2, right
/// for onnxruntime-genai, and the kept attention_mask, position ids and per-row positions are fed). The float16
/// model generates too (its logits are cast to float32 for sampling; its softmax KV cache stays float16).
/// </summary>
[TestFixture]
public class RealExportGenerateTests
{
    private static readonly string[] Fixtures =
        ["llama-optimum-past-opset14", "llama-optimum-past-opset17", "llama-optimum-past-fp16", "llama-optimum-merged", "llama-genai-gqa"];

    private static readonly string[] AllFixtures = [.. Fixtures, "gpt2-optimum-past-opset14"];

    private static IEnumerable<TestCaseData> RulesOnEveryFixture() =>
        from rule in new[] { "softmax", "linear-elu" }
        from fixture in AllFixtures
        select new TestCaseData(fixture, rule);

    private static readonly int[][] Prompts = [[5, 6, 7, 8, 9, 10, 20, 30, 40, 50], [11, 12, 13]];

    private static IEnumerable<TestCaseData> MemoriesOnEveryFixture() =>
        from rule in new[] { "window:16", "linear-elu" }
        from fixture in AllFixtures
        select new TestCaseData(fixture, rule);

    private static List<List<int>> Generate(string fixture, IReadOnlyList<IReadOnlyList<int>> prompts, string rule = "window:16", bool padded = false)
    {
        var exported = ModelFile.Load(Path.Combine(TestPaths.Shared, "fixtures", "real-exports", fixture, "model.onnx"));
        using var model = DecoderModel.FromExported(exported, AttentionRule.Parse(rule), intraOpThreads: 1);
        using var g = new Generator(model, new GeneratorParams(24, PadMixedLengths: padded), prompts);
        g.Prefill();
        while (!g.IsDone) g.GenerateNextToken();
        return Enumerable.Range(0, prompts.Count).Select(i => g.Sequence(i).ToList()).ToList();
    }

    [TestCaseSource(nameof(Fixtures))]
    public void PromptsOfDifferentLengthsGiveEachRowWhatItGivesAlone(string fixture)
    {
        var together = Generate(fixture, Prompts);
        for (var row = 0; row < Prompts.Length; row++)
        {
            var alone = Generate(fixture, [Prompts[row]])[0];
            Assert.That(alone, Has.Count.EqualTo(Prompts[row].Length + 24), $"row {row} alone generates 24 tokens");
            Assert.That(together[row], Is.EqualTo(alone), $"{fixture}: row {row} in a batch of prompts of lengths 10 and 3 vs alone");
        }
    }

    [Test]
    public void Gpt2WithWindowGivesEachRowWhatItGivesAlone() => PromptsOfDifferentLengthsGiveEachRowWhatItGivesAloneWith("gpt2-optimum-past-opset14", "window:16");

    [TestCaseSource(nameof(RulesOnEveryFixture))]
    public void PromptsOfDifferentLengthsGiveEachRowWhatItGivesAloneWith(string fixture, string rule)
    {
        // Each order: the longest row first (the shared cache length is its count) and last.
        int[][][] batches = [Prompts, [Prompts[1], Prompts[0]]];
        foreach (var prompts in batches)
        {
            var together = Generate(fixture, prompts, rule);
            for (var row = 0; row < prompts.Length; row++)
            {
                var alone = Generate(fixture, [prompts[row]], rule)[0];
                Assert.That(alone, Has.Count.EqualTo(prompts[row].Length + 24), $"row {row} alone generates 24 tokens");
                Assert.That(together[row], Is.EqualTo(alone), $"{fixture}, {rule}: row {row} of lengths {prompts[0].Length}, {prompts[1].Length} vs alone");
            }
        }
    }

    [TestCaseSource(nameof(MemoriesOnEveryFixture))]
    public void AFixedSizeMemoryFedPaddedRowsGivesEachRowWhatItGivesAlone(string fixture, string rule)
    {
        // One padded prefill instead of a prefill per row: the operators' token_mask keeps pads out of the state.
        var together = Generate(fixture, Prompts, rule, padded: true);
        for (var row = 0; row < Prompts.Length; row++)
        {
            var alone = Generate(fixture, [Prompts[row]], rule)[0];
            Assert.That(together[row], Is.EqualTo(alone), $"{fixture}, {rule}: row {row} padded in one batch vs alone");
        }
    }

    [Test]
    public void SoftmaxOnAModelThatReadsItsMaskPadsAsItsExporterDoes()
    {
        Assert.That(Contract("llama-optimum-past-opset14").PadsOnTheRight, Is.False, "Optimum: Hugging Face generate pads before the prompt");
        Assert.That(Contract("gpt2-optimum-past-opset14").PadsOnTheRight, Is.False);
        Assert.That(Contract("llama-genai-gqa").PadsOnTheRight, Is.True, "genai's GroupQueryAttention reads the first seqlens_k + 1 keys of a row");
        Assert.That(Contract("llama-genai-gqa").PaddingInput, Is.EqualTo("attention_mask"));
    }

    private static ModelContract Contract(string fixture)
    {
        var exported = ModelFile.Load(Path.Combine(TestPaths.Shared, "fixtures", "real-exports", fixture, "model.onnx"));
        AttentionSwapper.Swap(exported, AttentionRule.Parse("softmax"));
        return ModelContract.Read(exported);
    }
}
