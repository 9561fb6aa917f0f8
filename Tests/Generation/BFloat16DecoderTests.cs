using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Tests.Llama2c;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Generation;

/// <summary>
/// The stories260K decoder with its swapped attention on bfloat16 activations (see <see cref="OperatorActivationCasts"/>)
/// through the Generator, against the same decoder in float32.
/// </summary>
[TestFixture]
public class BFloat16DecoderTests
{
    private static readonly Lazy<Llama2cCheckpoint> Checkpoint = new(() => Llama2cCheckpoint.Load(LlamaGraphTests.CheckpointPath));

    private static readonly int[] Prompt = [1, 403, 407, 261, 378, 293, 343, 271, 430, 259, 296, 285];

    private const int NewTokens = 16;

    /// <summary>
    /// Logits of the whole network with bfloat16 attention activations against float32. Each attention input and
    /// output is rounded to bfloat16 (relative error up to 2^-8), five layers deep, through residuals and the
    /// classifier: a few bfloat16 roundings of the logits' scale, so 1e-2 of the largest |logit| (absolute, see
    /// TensorAssert) plus 1e-2 relative. Measured on stories260K: worst difference 3.1e-3 of the largest |logit|.
    /// </summary>
    private static readonly Tolerance Logits = new(1e-2, 1e-2);

    private static DecoderModel Model(bool bfloat16)
    {
        var model = DecoderSource.Build(Checkpoint.Value);
        var report = AttentionSwapper.Swap(model, AttentionRule.Parse("linear-elu"));
        if (bfloat16)
        {
            Assert.That(OperatorActivationCasts.Apply(model, TensorProto.Types.DataType.Bfloat16), Is.EqualTo(Checkpoint.Value.Config.Layers),
                "one LinearAttention node per layer runs on bfloat16");
        }
        return DecoderModel.FromSwapped(model, report, intraOpThreads: 1, source: bfloat16 ? "bfloat16 attention" : "float32");
    }

    private static float[] LastLogits(DecoderModel model, IReadOnlyList<int> prompt)
    {
        using var g = new Generator(model, new GeneratorParams(MaxNewTokens: 1), [prompt]);
        g.Prefill();
        return g.Logits(0).ToArray();
    }

    private static int ArgMax(float[] x) => Array.IndexOf(x, x.Max());

    [Test]
    public void GreedyLogitsAndTokensFollowTheFloat32Decoder()
    {
        using var f32 = Model(bfloat16: false);
        using var bf16 = Model(bfloat16: true);
        List<int> sequence;
        using (var g = new Generator(f32, new GeneratorParams(MaxNewTokens: NewTokens), [Prompt]))
        {
            g.Prefill();
            while (!g.IsDone) g.GenerateNextToken();
            sequence = g.Sequence(0).ToList();
        }
        Assert.That(sequence, Has.Count.EqualTo(Prompt.Length + NewTokens));

        // Teacher-forced on the float32 greedy sequence, so every step compares the two on the same context.
        var worst = 0.0;
        var differing = 0;
        for (var p = Prompt.Length; p < sequence.Count; p++)
        {
            var context = sequence.Take(p).ToList();
            var want = LastLogits(f32, context);
            var got = LastLogits(bf16, context);
            Assert.That(ArgMax(want), Is.EqualTo(sequence[p]), $"position {p}: the float32 greedy token");
            var scale = Math.Max(1.0, want.Max(Math.Abs));
            worst = Math.Max(worst, want.Zip(got, (w, x) => Math.Abs(w - x) / scale).Max());
            TensorAssert.Close(got, want.Select(w => (double)w).ToArray(), Logits, $"position {p}: bfloat16-attention logits");

            var token = ArgMax(got);
            if (token == sequence[p]) continue;
            // A different greedy token is only acceptable where float32 itself barely prefers its own: the two
            // candidates' float32 logits within what the tolerance allows each logit to move (twice the bound).
            differing++;
            var gap = want[sequence[p]] - want[token];
            var allowed = 2 * (Logits.Absolute * scale + Logits.Relative * Math.Abs(want[sequence[p]]));
            Assert.That(gap, Is.LessThanOrEqualTo(allowed),
                $"position {p}: bfloat16 picks {token} over float32's {sequence[p]} with a float32 gap of {gap}");
        }
        Assert.That(worst, Is.GreaterThan(0), "the bfloat16 casts change the computation (else this test compares float32 with itself)");
        TestContext.Out.WriteLine($"worst |logit difference| / max|logit|: {worst:E2}; greedy tokens differing: {differing} of {NewTokens}");
    }

    [Test]
    public void AModelWithBFloat16LogitsGeneratesThroughAFloat32Cast()
    {
        var model = DecoderSource.Build(Checkpoint.Value);
        var graph = model.Graph;
        var logits = graph.Output.Single(o => o.Name == LlamaGraphBuilder.Logits);
        var producer = graph.Node.Single(n => n.Output.Contains(LlamaGraphBuilder.Logits));
        producer.Output[producer.Output.IndexOf(LlamaGraphBuilder.Logits)] = "logits_float";
        graph.Node.Add(new NodeProto
        {
            OpType = "Cast",
            Name = "logits_to_bfloat16",
            Input = { "logits_float" },
            Output = { LlamaGraphBuilder.Logits },
            Attribute = { Attr.Int("to", (int)TensorProto.Types.DataType.Bfloat16) },
        });
        logits.Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Bfloat16;

        using var decoder = DecoderModel.FromExported(model, AttentionRule.Parse("linear-elu"), intraOpThreads: 1);
        Assert.That(decoder.Info.LogitsOutput, Is.EqualTo(LlamaGraphBuilder.Logits + ".float32"), "the 16-bit logits are cast to float32 at the end of the graph");
        using var g = new Generator(decoder, new GeneratorParams(4), [[1, 2, 3]]);
        g.Prefill();
        while (!g.IsDone) g.GenerateNextToken();
        Assert.That(g.Sequence(0), Has.Count.EqualTo(7));
        Assert.That(g.Sequence(0), Is.All.InRange(0, decoder.Vocab - 1));
    }
}
