using NUnit.Framework;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.NativeRuntime;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.NativeRuntime;

/// <summary>
/// Prompts of different lengths in one batch on a C-API session of the ORT 1.29 core: rows prefilled one by one on
/// views of the state buffers made through the C API, then decoded together at their own positions. Each row must
/// get what its prompt gets alone on that core, and what the managed binding's batch gives that row.
/// </summary>
[TestFixture]
[NonParallelizable]
public class NativeMixedLengthTests
{
    // 7, 2 and 11 tokens: in pieces of 3 they take 3, 1 and 4 calls, so with two buffers the rows' first calls write different buffers.
    private static readonly int[][] Prompts =
    [
        [1, 403, 407, 261, 378, 293, 343],
        [1, 284],
        [1, 403, 407, 261, 378, 293, 343, 271, 430, 259, 296],
    ];

    private const int NewTokens = 6;

    private static NativeDecoder Native(string rule) =>
        NativeDecoder.Default(OrtCores.Load(OrtCores.Fetched), AttentionRule.Parse(rule), NativeSessionSettings.Cpu(intraOpThreads: 1));

    [TestCase("linear-elu", true, null)]
    [TestCase("linear-elu", false, 3)]
    [TestCase("window:4", true, 3)]
    [TestCase("hybrid:4", false, null)]
    [TestCase("segment:4", true, null)]
    public void EachRowGetsWhatItsPromptGetsAloneOn129(string rule, bool inPlace, int? chunk)
    {
        using var native = Native(rule);
        Assert.That(native.Info.PositionsPerRow, Is.True);
        var p = new GeneratorParams(NewTokens, StateInPlace: inPlace);
        var batch = GenerationTrace.Run(native, Prompts, p, chunk);
        using var managed = DecoderModel.Default(AttentionRule.Parse(rule), intraOpThreads: 1);
        var managedBatch = GenerationTrace.Run(managed, Prompts, p, chunk);
        var what = $"{rule}, {(inPlace ? "in place" : "two buffers")}, {(chunk is { } c ? $"pieces of {c}" : "one call per row")}";
        for (var r = 0; r < Prompts.Length; r++)
        {
            batch.AssertRowMatches(r, GenerationTrace.Run(native, [Prompts[r]], p), 0, $"{what}: ORT 1.29 batch vs alone");
            batch.AssertRowMatches(r, managedBatch, r, $"{what}: ORT 1.29 vs managed batch");
        }
        Assert.That(batch.Sequences.Select(s => s.Count), Is.EqualTo(Prompts.Select(q => q.Length + NewTokens)));
    }

    [Test]
    public void TheSoftmaxRuleRefusesMixedLengthsOnTheCApiPathToo()
    {
        using var native = Native("softmax");
        var e = Assert.Throws<ArgumentException>(() => new Generator(native, new GeneratorParams(2), Prompts));
        Assert.That(e!.Message, Does.Contain("different lengths (7, 2, 11)").And.Contain("'softmax' rule").And.Contain("KV cache"));
    }

    [Test]
    public void MixedLengthDecodeStepsOn129DoNotAllocateMoreAsTheSequenceGrows()
    {
        using var native = Native("linear-elu");
        using var g = new Generator(native, new GeneratorParams(700), Prompts);
        g.Prefill();
        DecodeAllocations.AssertFlat(g, "ORT 1.29, linear-elu, rows of 7, 2 and 11 tokens");
    }
}
