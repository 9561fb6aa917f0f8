using System.Runtime.InteropServices;
using NUnit.Framework;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// bfloat16 activations through the CUDA operators' C# launch path: the plan recorded on a
/// <see cref="RecordingLauncher"/>, and the whole path run on the host emulation of the kernels
/// (<see cref="EmulatorLauncher"/>). Nothing here has run on a GPU.
/// </summary>
[TestFixture]
[NonParallelizable]
public unsafe class BFloat16LaunchTests
{
    private readonly List<nint> _host = [];

    /// <summary>One call per operator and path, with the activation type left open.</summary>
    public static IEnumerable<TestCaseData> Plans()
    {
        (string, Func<CudaActivation, RecordingLauncher>)[] plans =
        [
            ("linear prefill", act => LaunchScenarios.Linear(UpdateRule.Linear, 2, 100, 128, 128, act: act).Launcher),
            ("linear gated_delta recurrence", act => LaunchScenarios.Linear(UpdateRule.GatedDelta, 2, 5, 64, 96, act: act).Launcher),
            ("linear decode in place", act => LaunchScenarios.Linear(UpdateRule.Delta, 1, 1, 128, 128, act: act, inPlace: true).Launcher),
            ("window prompt (attention + store)", act => LaunchScenarios.Window(2, 3, 8, 6, 10, 2, act: act).Launcher),
            ("window decode, split-K", act => LaunchScenarios.Window(2, 1, 64, 64, 300, 4, act: act, multiprocessors: 1).Launcher),
            ("segment prompt", act => LaunchScenarios.Segment(2, 3, 16, 16, 8, act: act).Launcher),
            ("hybrid linear", act => LaunchScenarios.Hybrid(CompressKind.Linear, 2, 3, 64, 40, 16, act: act).Launcher),
            ("hybrid mean in place", act => LaunchScenarios.Hybrid(CompressKind.Mean, 1, 1, 60, 40, 16, act: act, inPlace: true).Launcher),
            ("hybrid hedgehog", act => LaunchScenarios.Hybrid(CompressKind.Hedgehog, 2, 3, 64, 40, 16, act: act).Launcher),
            ("summary moving", act => LaunchScenarios.Summary(SummaryKind.Moving, 1, 7, 32, 48, act: act).Launcher),
            ("summary ema", act => LaunchScenarios.Summary(SummaryKind.Ema, 2, 1, 64, 64, act: act).Launcher),
        ];
        return plans.Select(p => new TestCaseData(p.Item2).SetArgDisplayNames(p.Item1));
    }

    [TestCaseSource(nameof(Plans))]
    public void TheBFloat16PlanIsTheFloat16PlanCompiledForBFloat16(Func<CudaActivation, RecordingLauncher> plan)
    {
        // Both types are 2 bytes wide: same grids, offsets, shared memory, scratch and copies; only ACT_TYPE differs.
        var half = plan(CudaActivation.Float16);
        var bf16 = plan(CudaActivation.BFloat16);
        Assert.That(bf16.Launches, Is.Not.Empty);
        Assert.That(bf16.Launches.Select(l => ActType(l)), Is.All.EqualTo("2"), "ACT_TYPE 2 is bfloat16 in onnx_attention_common.cuh");
        Assert.That(half.Launches.Select(l => ActType(l)), Is.All.EqualTo("1"));
        Assert.That(bf16.Log.Select(Describe), Is.EqualTo(half.Log.Select(Describe)));
    }

    [Test]
    public void BFloat16ActivationsRunThroughTheTokenLoopAndTheTensorCorePrefill()
    {
        if (EmulatorLauncher.Unavailable is { } why)
        {
            Assert.Ignore($"CUDA host emulation unavailable: {why}");
        }
        // Window: 2 rows x 3 tokens of 2-byte activations, launched one (token, row) at a time.
        const int batch = 2, seq = 3, hkv = 2, dk = 16, dv = 8;
        var w = WindowAttentionAttributes.Validate(HeadAttributes.Validate(4, hkv, 0f), 6, 1, 0f);
        var (q, k, v) = Qkv(batch, seq, 4, hkv, dk, dv, 17);
        var pastK = Seeded.Uniform(171, batch * hkv * w.CacheRows * dk);
        var pastV = Seeded.Uniform(172, batch * hkv * w.CacheRows * dv);
        long[] position = [2, 9];
        var want = WindowAttentionReference.Run(w, batch, seq, dk, dv, R(q), R(k), R(v), pastK, pastV, position);
        var d = new WindowAttentionDevice(PutBFloat16(q), PutBFloat16(k), PutBFloat16(v), Put(pastK), Put(pastV), Put(position),
            Garbage(batch * seq * 4 * dv * 2), Garbage(pastK.Length * 4), Garbage(pastV.Length * 4), Garbage(batch * 8));
        using (var launcher = new EmulatorLauncher())
        {
            WindowAttentionCudaLaunches.Run(launcher, w, new QkvShapes(batch, seq, dk, dv), false, CudaActivation.BFloat16, d);
        }
        TensorAssert.Close(BFloat16Floats(d.Output, want.Output.Length), want.Output, Tolerance.BFloat16, "window output");
        TensorAssert.Close(Floats(d.PresentKeyCache, want.KeyCache.Length), want.KeyCache, Tolerance.Float32, "window present_key_cache");

        // LinearAttention prefill on the tensor-core path (bfloat16 mma.sync, emulated).
        const int tokens = 70, ldv = 32;
        var a = LinearAttentionAttributes.Validate(4, hkv, FeatureMap.EluPlusOne, 1, 1e-6f, 0f, UpdateRule.Linear, 0.95f);
        var (lq, lk, lv) = Qkv(1, tokens, 4, hkv, dk, ldv, 18);
        var wantLinear = LinearAttentionReference.Run(a, 1, tokens, dk, ldv, R(lq), R(lk), R(lv));
        var ld = new LinearAttentionDevice(PutBFloat16(lq), PutBFloat16(lk), PutBFloat16(lv), 0, 0, 0, 0, Garbage(tokens * 4 * ldv * 2),
            Garbage(hkv * dk * ldv * 4), Garbage(hkv * dk * 4));
        using (var launcher = new EmulatorLauncher())
        {
            LinearAttentionCudaLaunches.Run(launcher, a, new LinearAttentionShapes(1, tokens, dk, ldv, false, false), CudaActivation.BFloat16, ld);
        }
        TensorAssert.Close(BFloat16Floats(ld.Output, wantLinear.Output.Length), wantLinear.Output, Tolerance.BFloat16, "linear output");
        // The state is accumulated in float32 from the products of bfloat16 inputs, so it keeps the float32 tolerance.
        TensorAssert.Close(Floats(ld.PresentState, wantLinear.State.Length), wantLinear.State, Tolerance.Float32, "linear present_state");
    }

    [TearDown]
    public void FreeHostMemory()
    {
        foreach (var p in _host)
        {
            NativeMemory.Free((void*)p);
        }
        _host.Clear();
    }

    private static string ActType(Operators.Cuda.Launch.KernelLaunch l) => l.Specialization.Defines.Single(x => x.Name == "ACT_TYPE").Value;

    /// <summary>An operation of the log with the activation type left out.</summary>
    private static string Describe(RecordingLauncher.Operation op) => op switch
    {
        RecordingLauncher.Launched { Launch: var l } =>
            $"{l} grid {l.Grid} args [{string.Join(", ", l.Arguments.Select(x => $"{x.Name}:{x.Kind}:{x.Bits:X}"))}] " +
            $"defines [{string.Join(", ", l.Specialization.Defines.Where(x => x.Name != "ACT_TYPE").Select(x => $"{x.Name}={x.Value}"))}]",
        var other => other.ToString(),
    };

    /// <summary>What a bfloat16 input holds, rounded by ONNX Runtime's managed type (not by our converter).</summary>
    private static float[] R(float[] x) => ActivationTensors.RoundToBFloat16(x);

    private nint PutBFloat16(float[] x) => Put(ActivationTensors.ToBFloat16(x).Select(b => b.value).ToArray());

    /// <summary>bfloat16 bits widened by hand: they are the upper half of a float32.</summary>
    private static float[] BFloat16Floats(nint p, int count) =>
        new ReadOnlySpan<ushort>((void*)p, count).ToArray().Select(b => BitConverter.UInt32BitsToSingle((uint)b << 16)).ToArray();

    private static (float[] Q, float[] K, float[] V) Qkv(int batch, int seq, int qHeads, int kvHeads, int dk, int dv, int seed) =>
        (Seeded.Uniform(seed * 100 + 1, batch * seq * qHeads * dk), Seeded.Uniform(seed * 100 + 2, batch * seq * kvHeads * dk),
            Seeded.Uniform(seed * 100 + 3, batch * seq * kvHeads * dv));

    private nint Put<T>(T[] data) where T : unmanaged
    {
        var p = Garbage(data.Length * sizeof(T));
        data.AsSpan().CopyTo(new Span<T>((void*)p, data.Length));
        return p;
    }

    /// <summary>Host memory full of NaN bytes, as fresh device memory holds garbage.</summary>
    private nint Garbage(int bytes)
    {
        var p = (nint)NativeMemory.Alloc((nuint)Math.Max(bytes, 1));
        new Span<byte>((void*)p, bytes).Fill(0xFF);
        _host.Add(p);
        return p;
    }

    private static float[] Floats(nint p, int count) => new ReadOnlySpan<float>((void*)p, count).ToArray();
}
