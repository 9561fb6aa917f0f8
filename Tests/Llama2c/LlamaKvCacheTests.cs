using NUnit.Framework;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Llama2c;

/// <summary>
/// The stories260K decoder written as Hugging Face exports with past_key_values write it (past inputs joined onto
/// the new keys and values, presents out, positions and mask from the past length). Run with its own cache it is
/// the reference; swapped, its cache becomes the rule's state, and the softmax rule (or a window covering the whole
/// sequence) must give the same logits whole and token by token.
/// </summary>
[TestFixture]
public class LlamaKvCacheTests
{
    private static readonly Lazy<Llama2cCheckpoint> Checkpoint = new(() => Llama2cCheckpoint.Load(LlamaGraphTests.CheckpointPath));

    private static Llama2cConfig Config => Checkpoint.Value.Config;

    private const int Batch = 2, Seq = 13;

    private static long[] Tokens(int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, Batch * Seq).Select(_ => (long)rng.Next(Config.Vocab)).ToArray();
    }

    private static ModelProto Model(LlamaGraphOptions options) => LlamaGraphBuilder.Build(Checkpoint.Value, options);

    /// <summary>Logits of the model run in pieces with its own cache, fed back from presents to pasts (and position_ids when it takes them).</summary>
    private static float[] WithOwnCache(ModelProto model, long[] ids, IReadOnlyList<int> pieces, bool positionIds = false, bool attentionMask = false)
    {
        var hs = Config.HeadSize;
        var caches = Enumerable.Range(0, Config.Layers).SelectMany(l => new[]
        {
            new StateEntry(LlamaGraphBuilder.PastKey(l), LlamaGraphBuilder.PresentKey(l), TensorProto.Types.DataType.Float, [Config.KvHeads, 0, hs], 2),
            new StateEntry(LlamaGraphBuilder.PastValue(l), LlamaGraphBuilder.PresentValue(l), TensorProto.Types.DataType.Float, [Config.KvHeads, 0, hs], 2),
        }).ToList();
        using var runner = new SwappedModelRunner(model, caches, hasPosition: false, intraOpThreads: 1);
        return runner.Run([new SwappedModelRunner.SequenceInput(LlamaGraphBuilder.InputIds, ids)], Batch, Seq, pieces, LlamaGraphBuilder.Logits,
            (start, n) =>
            {
                var feed = new List<(string, Array, long[])>();
                if (positionIds)
                {
                    feed.Add((LlamaGraphBuilder.PositionIds, Enumerable.Range(0, Batch * n).Select(i => (long)(start + i % n)).ToArray(), [Batch, n]));
                }
                if (attentionMask)
                {
                    feed.Add((LlamaGraphBuilder.AttentionMask, Enumerable.Repeat(1L, Batch * (start + n)).ToArray(), [Batch, start + n]));
                }
                return feed;
            });
    }

    [Test]
    public void TheKvCacheFormMatchesTheReferenceForwardPassInPieces()
    {
        var ids = Tokens(3);
        var got = WithOwnCache(Model(new LlamaGraphOptions { KvCache = true }), ids, [5, 1, 1, 6]);
        for (var b = 0; b < Batch; b++)
        {
            var want = LlamaReferenceForward.Logits(Checkpoint.Value, ids.Skip(b * Seq).Take(Seq).ToArray());
            TensorAssert.Close(got.AsSpan(b * Seq * Config.Vocab, Seq * Config.Vocab), want, Tolerance.Float32Logits, $"row {b}");
        }
    }

    [TestCase("softmax", false, false)]
    [TestCase("window:16", false, false)]
    [TestCase("softmax", true, false)]
    [TestCase("window:13", false, true)]
    public void ItsCacheBecomesTheRulesStateAndTheLogitsStayTheSame(string rule, bool positionIds, bool pastLengthFromMask)
    {
        var options = new LlamaGraphOptions { KvCache = true, PositionIdsInput = positionIds, PastLengthFromAttentionMask = pastLengthFromMask };
        var ids = Tokens(4);
        var want = WithOwnCache(Model(options), ids, PieceRunner.Chunks(Seq, 1), positionIds, pastLengthFromMask);

        var model = Model(options);
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        Assert.That(report.Replaced, Has.Count.EqualTo(Config.Layers));
        Assert.That(report.Replaced.All(m => m.Cache is not null && m.Causal && m.QueryHeads == 8 && m.KvHeads == 4), Is.True);
        var stateInputs = report.State.Select(s => s.Past).ToList();
        Assert.That(model.Graph.Input.Select(i => i.Name), Is.EqualTo(new[] { LlamaGraphBuilder.InputIds, PositionOffset.InputName }.Concat(stateInputs)),
            "past_key_values and position_ids are gone: ids, the past length and the rule's state remain");
        Assert.That(model.Graph.Output.Select(o => o.Name), Is.EqualTo(new[] { LlamaGraphBuilder.Logits }.Concat(report.State.Select(s => s.Present))));
        if (positionIds) Assert.That(report.InterfaceChanges, Has.Some.StartsWith("input 'position_ids' removed"));
        if (pastLengthFromMask) Assert.That(report.InterfaceChanges, Has.Some.StartsWith("input 'attention_mask' removed: only its shape was read"));

        using var runner = new SwappedModelRunner(model, intraOpThreads: 1);
        TensorAssert.Close(runner.Logits(ids, Batch, Seq), want, Tolerance.Float32Logits, $"{rule}: whole vs own cache token by token");
        TensorAssert.Close(runner.Logits(ids, Batch, 1), want, Tolerance.Float32Logits, $"{rule}: token by token vs own cache token by token");
        TensorAssert.Close(runner.Logits(ids, Batch, 5), want, Tolerance.Float32Logits, $"{rule}: pieces of 5 vs own cache token by token");
    }

    [Test]
    public void AFixedSizeMemoryGivesTheSameLogitsAsOnTheModelWithoutCache()
    {
        var ids = Tokens(5);
        var kv = Model(new LlamaGraphOptions { KvCache = true });
        AttentionSwapper.Swap(kv, AttentionRule.Parse("linear-elu"));
        var plain = LlamaGraphBuilder.Build(Checkpoint.Value);
        AttentionSwapper.Swap(plain, AttentionRule.Parse("linear-elu"));
        using var kvRunner = new SwappedModelRunner(kv, intraOpThreads: 1);
        using var plainRunner = new SwappedModelRunner(plain, intraOpThreads: 1);
        var whole = kvRunner.Logits(ids, Batch, Seq);
        TensorAssert.Close(kvRunner.Logits(ids, Batch, 1), whole, Tolerance.Float32Reordered, "linear-elu on the KV-cache form: token by token vs whole");
        TensorAssert.Close(whole, plainRunner.Logits(ids, Batch, Seq), Tolerance.Float32Reordered, "linear-elu: KV-cache form vs the form without cache");
    }

    [TestCase("softmax")]
    [TestCase("hybrid:4")]
    public void TheGeneratorRunsTheSwappedKvCacheFormAsTheFormWithoutCache(string rule)
    {
        List<int> Generate(ModelProto exported)
        {
            using var model = DecoderModel.FromExported(exported, AttentionRule.Parse(rule), intraOpThreads: 1);
            using var g = new Generator(model, new GeneratorParams(12), [[1, 2, 3], [7, 8, 9]]);
            g.Prefill();
            while (!g.IsDone) g.GenerateNextToken();
            return [.. g.Sequence(0), .. g.Sequence(1)];
        }
        Assert.That(Generate(Model(new LlamaGraphOptions { KvCache = true })), Is.EqualTo(Generate(LlamaGraphBuilder.Build(Checkpoint.Value))));
    }

    /// <summary>
    /// A mask the model adds from its attention_mask values (causal + padding, run to check) is taken: the softmax
    /// rule keeps the input and passes the model's mask on (equal logits, whole and token by token); the fixed-size
    /// memories keep it too and read it as their token_mask: a pad is no part of any state, so the other rows are
    /// untouched and the next tokens of the padded row no longer see the pad (exactness against references: Runtime/TokenMaskTests, RealExports).
    /// </summary>
    [TestCase("softmax")]
    [TestCase("linear-elu")]
    [TestCase("window:16")]
    public void AnAttentionMaskWithPaddingIsTakenAsCausalPlusPadding(string rule)
    {
        var options = new LlamaGraphOptions { KvCache = true, AttentionMaskInput = true };
        var model = Model(options);
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        Assert.That(report.Replaced.Select(m => m.KeyPadding).ToList(), Has.Count.EqualTo(Config.Layers).And.All.EqualTo(LlamaGraphBuilder.AttentionMask));
        var softmax = rule == "softmax";
        Assert.That(model.Graph.Input.Any(i => i.Name == LlamaGraphBuilder.AttentionMask), "every rule reads the mask");
        using var runner = new SwappedModelRunner(model, intraOpThreads: 1);
        var ids = Tokens(6);
        if (softmax)
        {
            var want = WithOwnCache(Model(options), ids, PieceRunner.Chunks(Seq, 1), attentionMask: true);
            TensorAssert.Close(runner.Logits(ids, Batch, Seq), want, Tolerance.Float32Logits, "softmax with the model's mask: whole vs own cache");
            TensorAssert.Close(runner.Logits(ids, Batch, 1), want, Tolerance.Float32Logits, "softmax with the model's mask: token by token vs own cache");
        }
        else
        {
            // Row 1's first token is a pad.
            var pads = Enumerable.Range(0, ids.Length).Select(i => i == Seq ? 0L : 1L).ToArray();
            var plain = runner.Logits(ids, Batch, Seq);
            var padded = runner.Logits(ids, Batch, Seq, mask: pads);
            var vocab = plain.Length / ids.Length;
            TensorAssert.Close(padded.AsSpan(0, Seq * vocab), plain.AsSpan(0, Seq * vocab), Tolerance.Float32Reordered, "row 0 has no pads");
            Assert.That(padded.AsSpan((Seq + 1) * vocab, vocab).ToArray(), Is.Not.EqualTo(plain.AsSpan((Seq + 1) * vocab, vocab).ToArray()),
                "row 1's next token no longer sees the pad");
        }
    }
}
