using NUnit.Framework;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.NativeRuntime;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.NativeRuntime;

/// <summary>
/// The one generation loop (<see cref="Generator"/>) on a C-API session (<see cref="NativeDecoder"/>) against the same
/// loop on the managed binding (<see cref="DecoderModel"/>), on the default tiny Llama, with each ORT core: the same
/// greedy tokens and the same logits at every step.
/// Both cores live in this one process, with the managed binding's sessions beside them.
/// </summary>
[TestFixture]
[NonParallelizable]
public class NativeGeneratorParityTests
{
    private static readonly int[] Prompt = [1, 403, 407, 261, 378, 293];
    private static readonly int[] Other = [1, 296, 285, 430, 259, 271];
    private const int NewTokens = 10;

    private sealed record Trace(List<int>[] Sequences, List<float[]> Logits);

    private static Trace Managed(string rule, GeneratorParams p, int[][] prompts)
    {
        using var model = DecoderModel.Default(AttentionRule.Parse(rule), intraOpThreads: 1);
        return Generate(model, p, prompts);
    }

    private static Trace Native(OrtLibrary library, string rule, GeneratorParams p, int[][] prompts, Action<Generator>? check = null)
    {
        using var model = NativeDecoder.Default(library, AttentionRule.Parse(rule), NativeSessionSettings.Cpu(intraOpThreads: 1));
        return Generate(model, p, prompts, check);
    }

    private static Trace Generate(SwappedDecoder model, GeneratorParams p, int[][] prompts, Action<Generator>? check = null, int? chunk = null)
    {
        using var g = new Generator(model, p, prompts);
        check?.Invoke(g);
        var logits = new List<float[]>();
        if (chunk is { } c) g.PrefillInPieces(c);
        else g.Prefill();
        logits.Add(AllRows(g.Batch, g.Logits));
        while (!g.IsDone)
        {
            g.GenerateNextToken();
            logits.Add(AllRows(g.Batch, g.Logits));
        }
        return new Trace(Enumerable.Range(0, g.Batch).Select(r => g.Sequence(r).ToList()).ToArray(), logits);
    }

    private delegate ReadOnlySpan<float> RowLogits(int row);

    private static float[] AllRows(int batch, RowLogits logits) =>
        Enumerable.Range(0, batch).SelectMany(r => logits(r).ToArray()).ToArray();

    private static void AssertSame(Trace want, Trace got, string what)
    {
        Assert.That(got.Logits, Has.Count.EqualTo(want.Logits.Count), $"{what}: logit sets (prefill + steps)");
        for (var i = 0; i < want.Logits.Count; i++)
        {
            TensorAssert.Close(got.Logits[i], want.Logits[i], Tolerance.Float32, $"{what}: logits of call {i}");
        }
        for (var r = 0; r < want.Sequences.Length; r++)
        {
            Assert.That(got.Sequences[r], Is.EqualTo(want.Sequences[r]), $"{what}: tokens of row {r}");
        }
    }

    [TestCase("linear-elu", OrtCores.Managed)]
    [TestCase("linear-elu", OrtCores.Fetched)]
    [TestCase("softmax", OrtCores.Managed)]
    [TestCase("softmax", OrtCores.Fetched)]
    public void GreedyTokensAndLogitsMatchTheManagedGenerator(string rule, string core)
    {
        var library = OrtCores.Load(core);
        Assert.That(library.Version, Is.EqualTo(core));
        var p = new GeneratorParams(NewTokens);
        var want = Managed(rule, p, [Prompt, Other]);
        var got = Native(library, rule, p, [Prompt, Other], g => Assert.That(g.StateMemory, Is.EqualTo("Cpu")));
        Assert.That(want.Sequences[0], Has.Count.EqualTo(Prompt.Length + NewTokens));
        AssertSame(want, got, $"{rule} on ORT {core}");
    }

    [TestCase(OrtCores.Managed)]
    [TestCase(OrtCores.Fetched)]
    public void TwoStateBuffersGiveTheLogitsOfOneBufferUpdatedInPlace(string core)
    {
        var library = OrtCores.Load(core);
        var inPlace = Native(library, "linear-elu", new GeneratorParams(NewTokens, StateInPlace: true), [Prompt]);
        var swapped = Native(library, "linear-elu", new GeneratorParams(NewTokens, StateInPlace: false), [Prompt]);
        AssertSame(swapped, inPlace, $"ORT {core}, in place vs two buffers");
    }

    [Test]
    public void SeededSamplingGivesTheManagedGeneratorsTokensOn129()
    {
        var library = OrtCores.Load(OrtCores.Fetched);
        var p = new GeneratorParams(NewTokens, Sampling: new SamplingOptions(Temperature: 0.8f, TopK: 20, Seed: 3));
        AssertSame(Managed("linear-elu", p, [Prompt, Prompt]), Native(library, "linear-elu", p, [Prompt, Prompt]), "sampled, ORT 1.29");
    }

    [Test]
    public void BothCoresKeepTheirOwnOperatorDomainInOneProcess()
    {
        var managed = OrtCores.Load(OrtCores.Managed);
        var fetched = OrtCores.Load(OrtCores.Fetched);
        Assert.That(fetched.Handle, Is.Not.EqualTo(managed.Handle), "two libraries");
        Assert.That(fetched.Api.Operators.Handle, Is.Not.EqualTo(managed.Api.Operators.Handle), "two OrtApi tables");
        // Sessions of both, alive at once and run alternately, each calling back through its own table.
        using var inManaged = DecoderModel.Default(AttentionRule.Parse("linear-elu"), intraOpThreads: 1);
        using var inFetched = NativeDecoder.Default(fetched, AttentionRule.Parse("linear-elu"), NativeSessionSettings.Cpu(1));
        using var a = new Generator(inManaged, new GeneratorParams(4), [Prompt]);
        using var b = new Generator(inFetched, new GeneratorParams(4), [Prompt]);
        while (!a.IsDone || !b.IsDone)
        {
            if (!a.IsDone) a.GenerateNextToken();
            if (!b.IsDone) b.GenerateNextToken();
            TensorAssert.Close(b.Logits(0).ToArray(), a.Logits(0).ToArray(), Tolerance.Float32, $"step {a.GeneratedTokens}");
        }
        Assert.That(b.Sequence(0), Is.EqualTo(a.Sequence(0)));
        Assert.That(Operators.Registration.OperatorRegistry.DomainCount, Is.GreaterThanOrEqualTo(2));
        // Exactly two ORT libraries are mapped: the C-API path on 1.31.1 used the managed binding's own copy, not a third.
        var mapped = File.ReadAllLines("/proc/self/maps").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 6 && Path.GetFileName(f[5]) == "libonnxruntime.so").Select(f => Path.GetFullPath(f[5])).Distinct().ToList();
        Assert.That(mapped, Has.Count.EqualTo(2), string.Join("\n", mapped));
        Assert.That(mapped, Does.Contain(Path.GetFullPath(OrtCores.Ort129Library)));
    }
}
