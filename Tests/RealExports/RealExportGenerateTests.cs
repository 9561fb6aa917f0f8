using NUnit.Framework;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.RealExports;

/// <summary>
/// The real-export decoders that take positions per row (a position_ids input, or GroupQueryAttention's rotary at
/// the past length) generate a batch of prompts of different lengths with window:16, each row giving the tokens it
/// gives alone; the float16 model generates too (its logits are cast to float32 for sampling).
/// </summary>
[TestFixture]
public class RealExportGenerateTests
{
    private static readonly string[] Fixtures =
        ["llama-optimum-past-opset14", "llama-optimum-past-opset17", "llama-optimum-past-fp16", "llama-optimum-merged", "llama-genai-gqa"];

    private static readonly int[][] Prompts = [[5, 6, 7, 8, 9, 10, 20, 30, 40, 50], [11, 12, 13]];

    private static List<List<int>> Generate(string fixture, IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        var exported = ModelFile.Load(Path.Combine(TestPaths.Shared, "fixtures", "real-exports", fixture, "model.onnx"));
        using var model = DecoderModel.FromExported(exported, AttentionRule.Parse("window:16"), intraOpThreads: 1);
        using var g = new Generator(model, new GeneratorParams(24), prompts);
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
}
