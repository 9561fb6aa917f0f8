using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Genai;
using OnnxAttention.Host.Generation;
using OnnxAttention.Tests.Native;

namespace OnnxAttention.Tests.Genai;

/// <summary>
/// onnxruntime-genai 0.20 (Microsoft.ML.OnnxRuntimeGenAI, ORT 1.32) and our Generator, greedy, on the same model: the
/// tiny genai-form Llama, original (genai's GroupQueryAttention against our softmax swap) and swapped for every rule
/// genai can carry (genai running the folder `convert --genai` writes, with our NativeAOT library as its custom-op
/// library). Greedy tokens are compared exactly, up to the end-of-sequence token where genai stops a row; the logits behind them are float32 sums in different orders, so a
/// near tie could flip a token, and the model's classifier is scaled so that ties are rare (a failure names the step).
/// </summary>
[TestFixture]
[NonParallelizable]
public class GenaiParityTests
{
    private const int NewTokens = 12;

    private static readonly IReadOnlyList<IReadOnlyList<int>> Prompts =
    [
        [5, 17, 42, 99, 3, 7, 11, 200, 31, 64, 128, 250, 9, 77, 150, 33, 1, 254, 100, 60],
        [8, 1, 230, 45, 67, 89, 101, 12, 13, 14, 240, 66, 2, 190, 18, 22, 199, 71, 4, 43],
    ];

    /// <summary>Three lengths: genai pads the shorter rows on the right and appends each new token at one column for all rows.</summary>
    private static readonly IReadOnlyList<IReadOnlyList<int>> MixedPrompts =
    [
        [5, 17, 42, 99, 3, 7, 11, 200, 31, 64, 128, 250, 9, 77, 150, 33, 1, 254, 100, 60],
        [8, 1, 230, 45, 67, 89, 101, 12, 13, 14, 240],
        [19, 6, 222, 48, 90],
    ];

    private NativeBuild _native = null!;
    private string _work = null!;

    /// <summary>Rules whose state genai carries (see GenaiInterface); window and linear over positions past their window.</summary>
    public static readonly string[] GenaiRules = ["softmax", "linear-elu", "linear-relu", "linear-identity", "window:8", "window:8,sinks=2"];

    [OneTimeSetUp]
    public void BuildLibrary()
    {
        _native = NativeBuild.Create();
        _work = Directory.CreateTempSubdirectory("onnxattention-genai-").FullName;
    }

    [OneTimeTearDown]
    public void Clean()
    {
        _native?.Dispose();
        if (_work is not null) Directory.Delete(_work, recursive: true);
    }

    private static ModelProto Tiny() => GenaiLlamaModel.Build(GenaiLlamaConfig.Tiny(contextLength: 256));

    private static List<int[]> Ours(string rule) => Ours(rule, Prompts);

    private static List<int[]> Ours(string rule, IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        var model = Tiny();
        using var decoder = DecoderModel.FromExported(model, AttentionRule.Parse(rule), intraOpThreads: 1, source: "tiny genai llama");
        using var g = new Generator(decoder, new GeneratorParams(MaxNewTokens: NewTokens), prompts);
        g.Prefill();
        while (!g.IsDone) g.GenerateNextToken();
        return Enumerable.Range(0, prompts.Count).Select(r => g.Sequence(r).ToArray()).ToList();
    }

    /// <summary>The tiny model's end-of-sequence id (genai_config.json): genai stops a row there, our Generator is given no stop token.</summary>
    private const int Eos = 2;

    private static int[] UpToEos(int[] row, int promptLength)
    {
        var end = Array.IndexOf(row, Eos, promptLength);
        return end < 0 ? row : row[..(end + 1)];
    }

    private static void AssertSame(IReadOnlyList<int[]> genaiRows, IReadOnlyList<int[]> ourRows, string what) => AssertSame(genaiRows, ourRows, what, Prompts);

    private static void AssertSame(IReadOnlyList<int[]> genaiRows, IReadOnlyList<int[]> ourRows, string what, IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        Assert.That(genaiRows, Has.Count.EqualTo(prompts.Count), what);
        for (var r = 0; r < prompts.Count; r++)
        {
            var (genai, ours) = (UpToEos(genaiRows[r], prompts[r].Count), UpToEos(ourRows[r], prompts[r].Count));
            Assert.That(genai, Has.Length.EqualTo(ours.Length), $"{what}: row {r}: genai [{string.Join(" ", genai)}], ours [{string.Join(" ", ours)}]");
            var step = Enumerable.Range(0, genai.Length).FirstOrDefault(i => genai[i] != ours[i], -1);
            Assert.That(step, Is.EqualTo(-1), $"{what}: row {r} differs first at token {step}: genai [{string.Join(" ", genai)}], ours [{string.Join(" ", ours)}]");
        }
    }

    [Test]
    public void GenaiOnTheOriginalModelMatchesOurSoftmaxSwap()
    {
        var dir = Path.Combine(_work, "original");
        GenaiFolder.WriteOriginal(Tiny(), GenaiLlamaConfig.Tiny(contextLength: 256), dir);
        using var genai = GenaiModel.Open(dir);
        var run = genai.Generate(Prompts, NewTokens);
        AssertSame(run.Sequences, Ours("softmax"), "original model in genai vs softmax swap in our Generator");
    }

    [TestCaseSource(nameof(GenaiRules))]
    public void GenaiOnTheSwappedFolderMatchesOurGenerator(string rule)
    {
        var dir = Path.Combine(_work, rule.Replace(':', '_').Replace(',', '_').Replace('=', '_'));
        GenaiFolder.WriteSwapped(Tiny(), AttentionRule.Parse(rule), dir, _native.Library);
        Assert.That(File.Exists(Path.Combine(dir, GenaiFolder.NativeLibraryFile)), "the folder carries the custom-op library");
        using var genai = GenaiModel.Open(dir);
        var run = genai.Generate(Prompts, NewTokens);
        AssertSame(run.Sequences, Ours(rule), $"'{rule}' swap: genai vs our Generator");
    }

    /// <summary>
    /// genai pads the shorter prompts on the right (mask 0 there) and feeds one column for all rows from then on; the
    /// swapped folder takes each row's position from the mask's values, so every row generates what it generates alone
    /// in our Generator. Before, with one position for all rows from the mask's length, the short rows went wrong.
    /// </summary>
    [TestCaseSource(nameof(GenaiRules))]
    public void GenaiOnARightPaddedBatchOfMixedLengthsMatchesOurGenerator(string rule)
    {
        var dir = Path.Combine(_work, "mixed-" + rule.Replace(':', '_').Replace(',', '_').Replace('=', '_'));
        GenaiFolder.WriteSwapped(Tiny(), AttentionRule.Parse(rule), dir, _native.Library);
        using var genai = GenaiModel.Open(dir);
        var run = genai.Generate(MixedPrompts, NewTokens);
        AssertSame(run.Sequences, Ours(rule, MixedPrompts), $"'{rule}' swap, prompts of {string.Join(", ", MixedPrompts.Select(p => p.Count))} tokens: genai vs our Generator", MixedPrompts);
    }

    /// <summary>genai's own GroupQueryAttention on a right-padded batch: the reference the swapped folders now meet.</summary>
    [Test]
    public void GenaiOnTheOriginalModelMatchesOurSoftmaxSwapOnARightPaddedBatch()
    {
        var dir = Path.Combine(_work, "original-mixed");
        GenaiFolder.WriteOriginal(Tiny(), GenaiLlamaConfig.Tiny(contextLength: 256), dir);
        using var genai = GenaiModel.Open(dir);
        var run = genai.Generate(MixedPrompts, NewTokens);
        AssertSame(run.Sequences, Ours("softmax", MixedPrompts), "original model in genai vs softmax swap in our Generator, right-padded batch", MixedPrompts);
    }

    /// <summary>
    /// One prompt appended in pieces (genai's continuous decoding, batch 1), as bench-generate prefills long prompts:
    /// each piece continues the cache or state the earlier ones left, so the tokens are those of our Generator. Pieces
    /// of 7 over a 20-token prompt end off the window of the window:8 rules and mid-way through one.
    /// </summary>
    [TestCase("original")]
    [TestCaseSource(nameof(GenaiRules))]
    public void GenaiPrefillingOnePromptInPiecesMatchesOurGenerator(string rule)
    {
        var dir = Path.Combine(_work, "pieces-" + rule.Replace(':', '_').Replace(',', '_').Replace('=', '_'));
        if (rule == "original") GenaiFolder.WriteOriginal(Tiny(), GenaiLlamaConfig.Tiny(contextLength: 256), dir);
        else GenaiFolder.WriteSwapped(Tiny(), AttentionRule.Parse(rule), dir, _native.Library);
        IReadOnlyList<IReadOnlyList<int>> prompt = [Prompts[0]];
        using var genai = GenaiModel.Open(dir);
        var run = genai.Generate(prompt, NewTokens, prefillPiece: 7);
        AssertSame(run.Sequences, Ours(rule == "original" ? "softmax" : rule, prompt), $"'{rule}', one prompt in pieces of 7: genai vs our Generator", prompt);
    }

    [Test]
    public void GenaiRefusesToPadAPromptThatHoldsThePadId()
    {
        var dir = Path.Combine(_work, "original-pad");
        GenaiFolder.WriteOriginal(Tiny(), GenaiLlamaConfig.Tiny(contextLength: 256), dir);
        using var genai = GenaiModel.Open(dir);
        var e = Assert.Throws<ArgumentException>(() => genai.Generate([[5, 0, 7], [9]], NewTokens));
        Assert.That(e!.Message, Does.Contain("prompt 0 holds the pad id 0"));
    }

    [TestCase("segment:8", "4 state tensors per layer")]
    [TestCase("summary:moving=4", "state tensors per layer")]
    public void RulesGenaiCannotCarryAreRefusedWithTheReason(string rule, string reason)
    {
        var e = Assert.Throws<GraphException>(() => GenaiFolder.WriteSwapped(Tiny(), AttentionRule.Parse(rule), Path.Combine(_work, "refused"), _native.Library));
        Assert.That(e!.Message, Does.Contain(reason).And.Contain("onnxruntime-genai 0.20 carries"));
    }
}
