using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Tests.HybridAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// HybridAttention compress=hedgehog (the models calibrate writes) on its CUDA variant, run whole in a CPU session on the
/// host emulation of its kernels (<see cref="EmulatedCudaOperator"/>: kernel creation, shape checks, the launch plan, the
/// .cu source compiled for the host): against the double reference and the CPU kernel, for prompts of 1, 2, 63, 64, 65
/// and 500 tokens, from zero or a given state, awkward head sizes and feature counts; prefill == split == token by token;
/// float16 and bfloat16 activations; bad inputs refused with the CPU operator's messages. Emulated only: nothing here
/// has run on a GPU.
/// </summary>
[TestFixture]
[NonParallelizable]
public class EmulatedHedgehogTests
{
    private static readonly Dictionary<OrtElementType, EmulatedCudaOperator> Variants = [];

    [OneTimeSetUp]
    public void RequireEmulator() => EmulatedTokenMask.RequireEmulator();

    /// <summary>One emulated operator per activation type, kept for the process (ORT keeps its registered domain).</summary>
    private static EmulatedCudaOperator Cuda(OrtElementType type = OrtElementType.Float)
    {
        if (!Variants.TryGetValue(type, out var cuda))
        {
            Variants[type] = cuda = new EmulatedCudaOperator(launchers => new HybridAttentionCudaOperator(type, launchers));
        }
        return cuda;
    }

    private static HybridAttentionCase Case(int batch, int seq, int qHeads, int kvHeads, int dk, int dv, int window, int m,
        int seed = 1, int history = 0) =>
        new(batch, seq, qHeads, kvHeads, dk, dv, window, "hedgehog", Seed: seed, History: history, Projections: m);

    public static IEnumerable<HybridAttentionCase> Prompts()
    {
        // From zero: the first evictions happen inside the prompt from token 9 on.
        foreach (var t in new[] { 1, 2, 63, 64, 65 }) yield return Case(2, t, 4, 2, 16, 8, 8, 3, seed: t);
        // Rows continue after 6 and 7 earlier tokens (the reference's state): before, at and after the first eviction.
        foreach (var t in new[] { 1, 2, 65 }) yield return Case(2, t, 4, 2, 16, 8, 8, 3, seed: t + 100, history: 6);
        yield return Case(1, 500, 4, 2, 16, 8, 16, 4, seed: 5);
        yield return Case(2, 65, 3, 3, 60, 40, 12, 40, seed: 7);  // group 1, d_k 60, d_v 40 (two value row splits), 80 features
        yield return Case(2, 33, 8, 1, 20, 72, 12, 5, seed: 8);   // group 8, d_v 72 (three value columns a thread)
        yield return Case(2, 20, 4, 2, 16, 8, 100, 3, seed: 9);   // never evicts: the shared normaliser still has its epsilon
        yield return Case(1, 70, 2, 1, 16, 16, 1, 2, seed: 10);   // the window is the token alone
    }

    public static IEnumerable<HybridAttentionCase> Carried()
    {
        yield return Case(2, 33, 4, 2, 8, 8, 5, 3);
        yield return Case(2, 21, 4, 4, 8, 8, 5, 2, history: 3);
    }

    [TestCaseSource(nameof(Prompts))]
    public void APromptMatchesTheReferenceAndTheCpuKernel(HybridAttentionCase c)
    {
        var past = c.History > 0 ? c.Past : null;
        var pastInputs = past is null ? 0 : 5;
        var cuda = Cuda();
        var launches = cuda.Launches;
        using var onCuda = new HybridAttentionSession(c.Options, pastInputs, maps: c.Maps, session: cuda.Session);
        var got = onCuda.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        Assert.That(cuda.Launches - launches, Is.EqualTo(4), "features, attention, compress, store: whatever the length");
        Assert.That(cuda.Outstanding, Is.Zero, "the features scratch was freed");

        var want = c.Reference(past);
        var present = HybridAttentionAssert.MatchesReference(got, want, Tolerance.Float32, c.ToString());

        using var onCpu = new HybridAttentionSession(c.Options, pastInputs, maps: c.Maps);
        var cpu = onCpu.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        TensorAssert.Close(got.Y, cpu.Y, Tolerance.Float32Reordered, $"{c}: output against the CPU kernel");
        TensorAssert.Close(present.CompressedValue, cpu.Present!.CompressedValue, Tolerance.Float32Reordered, $"{c}: mu against the CPU kernel");
    }

    [TestCaseSource(nameof(Carried))]
    public void PrefillEqualsTokenByTokenDecode(HybridAttentionCase c) => AssertPiecesEqualWhole(c, StatePieces.EveryToken(c.Seq));

    [TestCaseSource(nameof(Carried))]
    public void SplitPrefillEqualsOnePiece(HybridAttentionCase c) => AssertPiecesEqualWhole(c, [c.Seq / 3 + 1, c.Seq / 3 + 1 + c.Seq / 4]);

    private static void AssertPiecesEqualWhole(HybridAttentionCase c, int[] innerCuts)
    {
        using var session = new HybridAttentionSession(c.Options, maps: c.Maps, session: Cuda().Session);
        var start = c.History > 0 ? c.Past : c.ZeroState;
        StatePieces.AssertPiecesEqualWhole(c, start, innerCuts, (n, q, k, v, past) => session.Run(c, n, q, k, v, past),
            (got, want) =>
            {
                Assert.That(got.Key, Is.EqualTo(want.Key), $"{c}: key cache");
                Assert.That(got.Position, Is.EqualTo(want.Position), $"{c}: position");
                TensorAssert.Close(got.CompressedKey, want.CompressedKey, Tolerance.Float32Reordered, $"{c}: compressed key");
                TensorAssert.Close(got.CompressedValue, want.CompressedValue, Tolerance.Float32Reordered, $"{c}: compressed value");
            });
        // And the whole call is the definition.
        var whole = session.Run(c, c.Seq, c.Query, c.Key, c.Value, start);
        TensorAssert.Close(whole.Y, c.Reference(c.History > 0 ? start : null).Output, Tolerance.Float32, $"{c}: output");
    }

    [TestCase(OrtElementType.Float16)]
    [TestCase(OrtElementType.BFloat16)]
    public void SixteenBitActivationsMatchTheReferenceOnRoundedInputs(OrtElementType type)
    {
        var c = Case(2, 65, 4, 2, 16, 8, 8, 3, seed: 3, history: 5);
        var onnxType = type == OrtElementType.Float16 ? TensorProto.Types.DataType.Float16 : TensorProto.Types.DataType.Bfloat16;
        var past = c.Past;
        using var session = new HybridAttentionSession(c.Options, activation: onnxType, maps: c.Maps, session: Cuda(type).Session);
        var got = session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        float[] R(float[] x) => ActivationTensors.RoundTo(x, onnxType);
        var want = Reference.HybridAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, R(c.Query), R(c.Key), R(c.Value),
            past.Key, past.Value, past.Position, past.CompressedKey, past.CompressedValue, c.Maps);
        TensorAssert.Close(got.Y, want.Output, type == OrtElementType.Float16 ? Tolerance.Float16 : Tolerance.BFloat16, $"{type}: output");
        // The memory is a float32 accumulation of 16-bit inputs.
        TensorAssert.Close(got.Present!.CompressedValue, want.CompressedValue, Tolerance.Float32, $"{type}: present_compressed_value");
        TensorAssert.Close(got.Present.CompressedKey, want.CompressedKey, Tolerance.Float32, $"{type}: present_compressed_key");
    }

    private static readonly HybridAttentionCase Good = Case(2, 5, 4, 2, 8, 6, 3, 2);

    private static void AssertRunFails(Reference.HybridAttentionReference.HedgehogMaps? maps, string fragment, int? mapHeadDim = null)
    {
        using var session = new HybridAttentionSession(Good.Options, pastInputs: 0, maps: maps, mapHeadDim: mapHeadDim, session: Cuda().Session);
        OrtAssert.RunFails(() => session.Run(Good, Good.Seq, Good.Query, Good.Key, Good.Value, null), fragment);
    }

    [Test]
    public void MissingMapsAreRefused() => AssertRunFails(null, "compress=hedgehog needs input feature_query_weight");

    [Test]
    public void WeightsForAnotherHeadSizeAreRefused() =>
        AssertRunFails((Good with { Dk = 9 }).Maps, "feature_query_weight has shape [4, 9, 2]; expected [q_num_heads, head_dim, projections] = [4, 8, 2]", mapHeadDim: 9);

    [Test]
    public void AGroupOfFeaturesTooLargeForSharedMemoryIsRefusedAtSessionCreation()
    {
        // 8 query heads a KV head x m = 300: 2400 > 2048.
        var c = Case(1, 2, 8, 1, 8, 8, 4, 300);
        var e = Assert.Throws<OnnxRuntimeException>(() =>
            Cuda().Session(HybridAttentionSession.BuildModel(c.Options, pastInputs: 0, maps: c.Maps)).Dispose());
        Assert.That(e!.Message, Does.Contain(
            "compress=hedgehog on CUDA needs (q_num_heads / kv_num_heads) * projections in [1, 2048], got 8 * 300; run the node on the CPU execution provider"));
    }
}
