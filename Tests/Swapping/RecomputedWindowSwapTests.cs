using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Swapped;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// <c>window:W,keys=ids</c>: a window in layer 0 that keeps token ids and recomputes the window's keys and values
/// from them at each call. It must give what <c>window:W</c> in that layer gives (float32 keys and values kept), for
/// the whole sequence, token by token and in pieces, on padded rows, with 4 bytes of state per token; and the swap
/// must refuse it where keys read the context.
/// </summary>
[TestFixture]
public class RecomputedWindowSwapTests
{
    private const int Rows = 2, Seq = 40;

    private static readonly Lazy<Llama2cCheckpoint> Checkpoint = new(() => Llama2cCheckpoint.Load(Llama2c.LlamaGraphTests.CheckpointPath));

    private static long[] Ids => [.. Seeded.Uniform(11, Rows * Seq, 1, 511).Select(x => (long)x)];

    /// <summary>stories260K as the CLI loads a .bin (KV-cache form, position_ids input), or in another form.</summary>
    private static ModelProto Stories(LlamaGraphOptions? options = null) =>
        LlamaGraphBuilder.Build(Checkpoint.Value, options ?? new LlamaGraphOptions { KvCache = true, PositionIdsInput = true });

    private static (ModelProto Model, SwapReport Report) Swapped(string rule, ModelProto? model = null)
    {
        model ??= Stories();
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse(rule));
        return (model, report);
    }

    [Test]
    public void TheSpellingIsAWindowOption()
    {
        Assert.That(AttentionRule.Parse("Window:16, keys=ids"), Is.EqualTo(new RecomputedWindowRule(16)));
        Assert.That(new RecomputedWindowRule(16).Spelling, Is.EqualTo("window:16,keys=ids"));
        Assert.That(AttentionRule.Parse("window:16,keys=ids,state=float32"), Is.EqualTo(new RecomputedWindowRule(16)), "float32 names no change");
        var layered = AttentionRule.Parse("window:512,keys=ids@0;window:8,state=float16@*");
        Assert.That(layered.Spelling, Is.EqualTo("window:512,keys=ids@0;window:8,state=float16@*"));
        Assert.That(AttentionRule.Parse(layered.Spelling), Is.EqualTo(layered), "the spelling parses back");
    }

    [TestCase("window:16,keys=ids,sinks=2", "not sinks")]
    [TestCase("window:16,sinks=2,keys=ids", "not sinks")]
    [TestCase("window:16,keys=ids,state=float16", "it takes no state=")]
    [TestCase("window:16,keys=ids,keys=ids", "twice")]
    [TestCase("window:16,keys=values", "expected sinks=N or keys=ids")]
    [TestCase("window:0,keys=ids", "positive integer")]
    [TestCase("window:,keys=ids", "positive integer")]
    public void BadSpellingsAreRefused(string text, string why)
    {
        var e = Assert.Throws<FormatException>(() => AttentionRule.Parse(text));
        Assert.That(e!.Message, Does.Contain(why));
    }

    [TestCase("window:8,keys=ids@1;window:8@*", 1)]
    [TestCase("window:8,keys=ids", 1)]
    [TestCase("window:8@0;window:8,keys=ids@4;linear-elu@*", 4)]
    public void ALayerWhoseKeysReadTheContextIsRefused(string rule, int layer)
    {
        var e = Assert.Throws<GraphException>(() => Swapped(rule));
        Assert.That(e!.Message, Does.StartWith($"layer {layer}: window:8,keys=ids recomputes keys and values from token ids"));
        Assert.That(e.Message, Does.Contain("an attention (it reads other tokens)"));
        Assert.That(e.Message, Does.Not.Contain("\n"), "one line");
    }

    [Test]
    public void TheStateIsTheIdsOfTheWindow()
    {
        var (model, report) = Swapped("window:64,keys=ids@0;window:8@*");
        var (_, plain) = Swapped("window:64@0;window:8@*");
        Assert.That(report.Layers[0].StateBytesPerSequence, Is.EqualTo(64 * 4), "one float32 id per token");
        Assert.That(plain.Layers[0].StateBytesPerSequence, Is.EqualTo(64 * 2 * 4 * 8 * 4), "keys and values: 64 tokens x 2 x 4 KV heads x 8 dims x 4 bytes");
        Assert.That(report.Layers.Skip(1).Select(l => l.StateBytesPerSequence), Is.EqualTo(plain.Layers.Skip(1).Select(l => l.StateBytesPerSequence)));
        var contract = ModelContract.Read(model);
        var ids = contract.State.Single(s => s.Past.StartsWith("past_window_ids", StringComparison.Ordinal));
        Assert.That(ids.TailShape, Is.EqualTo(new long[] { 1, 64, 1 }));
        Assert.That(ids.ElementType, Is.EqualTo(TensorProto.Types.DataType.Float));
        Assert.That(ids.InPlace, Is.False, "the recomputation reads the past ids beside the node that writes the present ones");
        Assert.That(contract.State.Sum(s => s.BytesPerRow), Is.EqualTo(report.StateBytesPerSequence));
    }

    /// <summary>Windows shorter than the sequence (the ring wraps), as long as it, and longer (it never fills).</summary>
    [TestCase(1)]
    [TestCase(7)]
    [TestCase(16)]
    [TestCase(40)]
    [TestCase(64)]
    public void LogitsAreThoseOfTheWindowKeepingKeysWholeTokenByTokenAndInPieces(int window)
    {
        var (reference, _) = Swapped($"window:{window}@0;window:6@*");
        var (swapped, _) = Swapped($"window:{window},keys=ids@0;window:6@*");
        using var plain = new SwappedModelRunner(reference, 1);
        using var ids = new SwappedModelRunner(swapped, 1);
        var want = plain.Logits(Ids, Rows, chunk: Seq);
        foreach (var chunk in new[] { Seq, 1, 7, 3 * window / 2 + 1 })
        {
            var got = ids.Logits(Ids, Rows, chunk);
            TestContext.Out.WriteLine($"window {window} chunk {chunk}: worst {got.Zip(want, (a, b) => Math.Abs(a - b)).Max():G3}");
            TensorAssert.Close(got, want, Tolerance.Float32Logits, $"window:{window},keys=ids in pieces of {chunk} vs window:{window} whole");
        }
        TensorAssert.Close(plain.Logits(Ids, Rows, chunk: 1), want, Tolerance.Float32Logits, "the reference itself token by token");
    }

    [Test]
    public void RowsAtDifferentPositionsKeepTheirOwnWindows()
    {
        // Row 0 runs 40 tokens in pieces of 5 while row 1 runs them in pieces of 3 would need two hosts; instead the
        // model is run with per-row positions: row 1 fed a prefix of 9 tokens first, then both rows continue.
        var (reference, _) = Swapped("window:6@0;window:4@*");
        var (swapped, _) = Swapped("window:6,keys=ids@0;window:4@*");
        var contract = ModelContract.Read(swapped);
        Assert.That(contract.PositionsPerRow, Is.True, "stories260K with position_ids takes per-row positions");
        using var plain = new SwappedModelRunner(reference, 1);
        using var ids = new SwappedModelRunner(swapped, 1);
        TensorAssert.Close(ids.Logits(Ids, Rows, chunk: 9), plain.Logits(Ids, Rows, chunk: 9), Tolerance.Float32Logits, "pieces of 9");
    }

    /// <summary>llama2.c in the Hugging Face shape with padding: attention_mask and position_ids (cumsum(mask) - 1).</summary>
    [Test]
    public void PaddedRowsGiveTheWindowsLogitsAtTheirTokens()
    {
        var options = new LlamaGraphOptions { KvCache = true, AttentionMaskInput = true, PositionIdsInput = true };
        var (reference, _) = Swapped("window:5@0;window:3@*", Stories(options));
        var (swapped, _) = Swapped("window:5,keys=ids@0;window:3@*", Stories(options));
        // Row 0: 7 pads on the left; row 1: pads at 3 places inside.
        var mask = Enumerable.Range(0, Rows * Seq).Select(i => i < 7 || i is Seq + 10 or Seq + 11 or Seq + 25 ? 0L : 1L).ToArray();
        using var plain = new SwappedModelRunner(reference, 1);
        using var ids = new SwappedModelRunner(swapped, 1);
        var want = plain.Logits(Ids, Rows, Seq, mask: mask);
        var vocab = want.Length / mask.Length;
        foreach (var chunk in new[] { Seq, 1, 6 })
        {
            var got = ids.Logits(Ids, Rows, chunk, mask: mask);
            for (var t = 0; t < mask.Length; t++)
            {
                if (mask[t] == 1) TensorAssert.Close(got.AsSpan(t * vocab, vocab), want.AsSpan(t * vocab, vocab), Tolerance.Float32Logits, $"token {t}, pieces of {chunk}");
            }
        }
    }

    [Test]
    public void PaddingWithPositionsCountedOverPadsIsRefused()
    {
        // Without position_ids the graph counts positions from the cache length, pads included, while the window
        // keeps only real tokens: the stored tokens' positions would not be known.
        var model = Stories(new LlamaGraphOptions { KvCache = true, AttentionMaskInput = true });
        var e = Assert.Throws<GraphException>(() => Swapped("window:5,keys=ids@0;window:3@*", model));
        Assert.That(e!.Message, Does.Contain("position_ids"));
    }

    /// <summary>The graph without a KV cache (positions Range(0, S), offset by the swap) and the plain KV-cache form.</summary>
    [Test]
    public void OtherFormsOfTheLlamaGraph()
    {
        foreach (var options in new[] { new LlamaGraphOptions(), new LlamaGraphOptions { KvCache = true } })
        {
            var (reference, _) = Swapped("window:9@0;window:4@*", Stories(options));
            var (swapped, _) = Swapped("window:9,keys=ids@0;window:4@*", Stories(options));
            using var plain = new SwappedModelRunner(reference, 1);
            using var ids = new SwappedModelRunner(swapped, 1);
            var want = plain.Logits(Ids, Rows, Seq);
            TensorAssert.Close(ids.Logits(Ids, Rows, 1), want, Tolerance.Float32Logits, $"{options}: token by token");
            TensorAssert.Close(ids.Logits(Ids, Rows, 7), want, Tolerance.Float32Logits, $"{options}: pieces of 7");
        }
    }

    [Test]
    public void TheGeneratorRunsASavedModel()
    {
        var (swapped, report) = Swapped("window:12,keys=ids@0;window:6@*");
        using var decoder = DecoderModel.LoadSwapped(ModelProto.Parser.ParseFrom(swapped.ToByteArray()), intraOpThreads: 1);
        Assert.That(decoder.StateBytesPerSequence, Is.EqualTo(report.StateBytesPerSequence));
        int[] prompt = [1, 403, 407, 261, 378, 293];
        List<int> sequence;
        using (var g = new Generator(decoder, new GeneratorParams(MaxNewTokens: 20), [prompt]))
        {
            g.Prefill();
            while (!g.IsDone) g.GenerateNextToken();
            sequence = [.. g.Sequence(0)];
        }
        var (reference, _) = Swapped("window:12@0;window:6@*");
        using var runner = new SwappedModelRunner(reference, 1);
        var ids = sequence.Select(t => (long)t).ToArray();
        var logits = runner.Logits(ids, 1, ids.Length);
        var vocab = logits.Length / ids.Length;
        for (var t = prompt.Length - 1; t < ids.Length - 1; t++)
        {
            var row = logits.AsSpan(t * vocab, vocab);
            Assert.That(ids[t + 1], Is.EqualTo(row.IndexOf(TensorPrimitivesMax(row))), $"greedy token {t + 1} is window:12's argmax");
        }
    }

    private static float TensorPrimitivesMax(ReadOnlySpan<float> row) => System.Numerics.Tensors.TensorPrimitives.Max(row);

    private static string Fixture(string name) => Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", name);

    /// <summary>Torch exports (dynamo, no KV cache): layer 0 with keys=ids, layer 1 window:16, against PyTorch's window-16 logits.</summary>
    [TestCase("llama-gqa-eager-dynamo")]
    [TestCase("llama-gqa-sdpa-dynamo18")]
    [TestCase("gpt2-eager-dynamo")]
    public void ExportedDecodersReproduceTheirWindowReference(string fixture)
    {
        var model = ModelFile.Load(Path.Combine(Fixture(fixture), "model.onnx"));
        AttentionSwapper.Swap(model, AttentionRule.Parse("window:16,keys=ids@0;window:16@*"));
        using var runner = new SwappedModelRunner(model, intraOpThreads: 1);
        var idsTensor = TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(Fixture(fixture), "test_data", "input_ids.pb")));
        var want = Tensors.ToFloatArray(TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(Fixture(fixture), "test_data", "logits_window16.pb"))));
        foreach (var chunk in new[] { int.MaxValue, 1, 5 })
        {
            TensorAssert.Close(runner.Logits(Tensors.ToInt64Array(idsTensor), (int)idsTensor.Dims[0], chunk), want, Tolerance.Conformance, $"{fixture} chunk {chunk}");
        }
    }

    private static string RealExport(string name, string file) => Path.Combine(TestPaths.Shared, "fixtures", "real-exports", name, file);

    private static long[] Ints(string path) => Tensors.ToInt64Array(TensorProto.Parser.ParseFrom(File.ReadAllBytes(path)));

    /// <summary>
    /// Optimum's Llama exports (KV cache, attention_mask, position_ids; float32 and float16, and the merged decoder),
    /// plain and left-padded, against the fixtures' window-16 references where the mask is 1. Optimum's GPT-2 and the
    /// genai GroupQueryAttention model count positions over pads (or from the past length) and are refused.
    /// </summary>
    [TestCase("llama-optimum-past-opset14", 1e-3)]
    [TestCase("llama-optimum-past-opset17", 1e-3)]
    [TestCase("llama-optimum-past-fp16", 5e-2)]
    [TestCase("llama-optimum-merged", 1e-3)]
    public void OptimumLlamaExportsReproduceTheirWindowReference(string fixture, double tolerance)
    {
        var model = ModelFile.Load(RealExport(fixture, "model.onnx"));
        AttentionSwapper.Swap(model, AttentionRule.Parse("window:16,keys=ids@0;window:16@*"));
        using var runner = new SwappedModelRunner(model, intraOpThreads: 1);
        foreach (var suffix in new[] { "", "_padded" })
        {
            var ids = Ints(RealExport(fixture, $"test_data/input_ids{suffix}.pb"));
            var mask = Ints(RealExport(fixture, $"test_data/attention_mask{suffix}.pb"));
            var positions = Ints(RealExport(fixture, $"test_data/position_ids{suffix}.pb"));
            var want = Tensors.ToFloatArray(TensorProto.Parser.ParseFrom(File.ReadAllBytes(RealExport(fixture, $"test_data/logits_window16{suffix}.pb"))));
            var vocab = want.Length / ids.Length;
            foreach (var chunk in new[] { int.MaxValue, 1, 5 })
            {
                var got = runner.Logits(ids, 2, chunk, mask: mask, positions: chunk == int.MaxValue ? positions : null);
                for (var t = 0; t < ids.Length; t++)
                {
                    if (mask[t] == 1) TensorAssert.Close(got.AsSpan(t * vocab, vocab), want.AsSpan(t * vocab, vocab), new Tolerance(tolerance, 0), $"{fixture}{suffix} token {t}, pieces of {chunk}");
                }
            }
        }
    }

    [TestCase("gpt2-optimum-past-opset14")]
    [TestCase("llama-genai-gqa")]
    public void ExportsWhosePositionsCountPadsAreRefused(string fixture)
    {
        var model = ModelFile.Load(RealExport(fixture, "model.onnx"));
        var e = Assert.Throws<GraphException>(() => AttentionSwapper.Swap(model, AttentionRule.Parse("window:16,keys=ids@0;window:16@*")));
        Assert.That(e!.Message, Does.StartWith("layer 0: window:16,keys=ids needs a model with padding to take its positions from a position_ids input"));
    }

    [Test]
    public void AGenaiFolderIsRefusedInOneLine()
    {
        var (model, _) = Swapped("window:16,keys=ids@0;window:8@*");
        var e = Assert.Throws<GraphException>(() => GenaiInterface.Apply(model));
        Assert.That(e!.Message, Does.Contain("keeps token ids (keys=ids)").And.Contain("onnxruntime-genai 0.20 cannot carry").And.Not.Contain("\n"));
    }
}
