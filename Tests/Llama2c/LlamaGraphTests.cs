using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Llama2c;

/// <summary>The stories260K checkpoint (a real trained tiny Llama) built into an ONNX graph in C#.</summary>
[TestFixture]
public class LlamaGraphTests
{
    public static string CheckpointPath => Path.Combine(TestPaths.Shared, "models", "llama2c", "stories260K.bin");

    private static readonly Lazy<Llama2cCheckpoint> Checkpoint = new(() => Llama2cCheckpoint.Load(CheckpointPath));

    private static long[] Tokens(int batch, int seq, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, batch * seq).Select(_ => (long)rng.Next(Checkpoint.Value.Config.Vocab)).ToArray();
    }

    [Test]
    public void ReadsTheHeader()
    {
        var c = Checkpoint.Value.Config;
        Assert.That(c, Is.EqualTo(new Llama2cConfig(64, 172, 5, 8, 4, 512, 512, SharedClassifier: true)));
    }

    [Test]
    public void SoftmaxGraphMatchesTheReferenceForwardPass()
    {
        const int batch = 2, seq = 23;
        var ids = Tokens(batch, seq, 5);
        using var session = SessionFactory.Create(LlamaGraphBuilder.Build(Checkpoint.Value), intraOpThreads: 1);
        using var input = OrtValue.CreateTensorValueFromMemory(ids, [batch, seq]);
        using var runOptions = new RunOptions();
        using var results = session.Session.Run(runOptions, [LlamaGraphBuilder.InputIds], [input], [LlamaGraphBuilder.Logits]);
        var got = results[0].GetTensorDataAsSpan<float>().ToArray();
        var vocab = Checkpoint.Value.Config.Vocab;
        for (var b = 0; b < batch; b++)
        {
            var want = LlamaReferenceForward.Logits(Checkpoint.Value, ids.Skip(b * seq).Take(seq).ToArray());
            TensorAssert.Close(got.AsSpan(b * seq * vocab, seq * vocab), want, Tolerance.Float32Logits, $"row {b}");
        }
    }

    [TestCase("linear-elu")]
    [TestCase("softmax")]
    public void SwappedGraphGivesTheSameLogitsWholeAndTokenByToken(string rule)
    {
        const int batch = 2, seq = 17;
        var model = LlamaGraphBuilder.Build(Checkpoint.Value);
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        Assert.That(report.Replaced, Has.Count.EqualTo(5));
        Assert.That(report.Replaced.All(m => m.QueryHeads == 8 && m.KvHeads == 4 && m.HeadDim == 8), Is.True);
        using var runner = new SwappedModelRunner(model, intraOpThreads: 1);
        var ids = Tokens(batch, seq, 9);
        var whole = runner.Logits(ids, batch, seq);
        var stepwise = runner.Logits(ids, batch, 1);
        // ORT's softmax Attention rounds differently for one query than for a whole block; over 5 layers whole and
        // stepwise logits each land within 6e-5 of the double reference (measured), so they compare at logits tolerance.
        var tolerance = rule == "softmax" ? Tolerance.Float32Logits : Tolerance.Float32Reordered;
        TensorAssert.Close(stepwise, whole, tolerance, $"{rule}: token by token vs whole");
    }

    [Test]
    public void SoftmaxSwapTokenByTokenMatchesTheReferenceForwardPass()
    {
        const int batch = 2, seq = 19;
        var model = LlamaGraphBuilder.Build(Checkpoint.Value);
        AttentionSwapper.Swap(model, AttentionRule.Parse("softmax"));
        using var runner = new SwappedModelRunner(model, intraOpThreads: 1);
        var ids = Tokens(batch, seq, 11);
        var got = runner.Logits(ids, batch, chunk: 1);
        var vocab = Checkpoint.Value.Config.Vocab;
        for (var b = 0; b < batch; b++)
        {
            var want = LlamaReferenceForward.Logits(Checkpoint.Value, ids.Skip(b * seq).Take(seq).ToArray());
            TensorAssert.Close(got.AsSpan(b * seq * vocab, seq * vocab), want, Tolerance.Float32Logits, $"row {b}");
        }
    }

    [Test]
    public void RefusesATruncatedCheckpoint()
    {
        var bytes = File.ReadAllBytes(CheckpointPath);
        var e = Assert.Throws<InvalidDataException>(() => Llama2cCheckpoint.Parse(bytes.AsSpan(0, bytes.Length - 4)));
        Assert.That(e!.Message, Does.Contain("needs 264128 floats of weights, the file has 264127"));
    }
}

[TestFixture]
public class LlamaLongContextTests
{
    [Test]
    public void Stories260KUsesStandardRopeSoPositionsAreNotBoundedByItsTable()
    {
        var checkpoint = Llama2cCheckpoint.Load(LlamaGraphTests.CheckpointPath);
        Assert.That(LlamaGraphBuilder.RopeTheta(checkpoint), Is.EqualTo(10000));
    }

    [Test]
    public void AStateBasedModelGeneratesPastTheCheckpointsMaxSequenceLength()
    {
        var checkpoint = Llama2cCheckpoint.Load(LlamaGraphTests.CheckpointPath);
        using var model = OnnxAttention.Host.Generation.DecoderModel.FromExported(LlamaGraphBuilder.Build(checkpoint), AttentionRule.Parse("linear-elu"), intraOpThreads: 1);
        using var g = new OnnxAttention.Host.Generation.Generator(model, new OnnxAttention.Host.Generation.GeneratorParams(checkpoint.Config.MaxSequence + 100), [[1, 2, 3]]);
        g.Prefill();
        while (!g.IsDone) g.GenerateNextToken();
        Assert.That(g.Sequence(0), Has.Count.EqualTo(3 + checkpoint.Config.MaxSequence + 100));
    }
}
