using NUnit.Framework;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// The CUDA operators' whole C# launch path (launch plans, argument packing, token loop, state chaining, in-place
/// staging, split-K scratch) run on the host emulation of the kernels (<see cref="EmulatorLauncher"/>) over host
/// "device" memory, against the double-precision references. This is the closest to a GPU run this machine allows;
/// nothing here has run on a GPU. Needs g++ (C++20) and python3; about a second per kernel specialisation the
/// first time (cached in the temp folder afterwards).
/// </summary>
[TestFixture]
[NonParallelizable]
public unsafe class EmulatedLaunchTests : EmulatedMemory
{
    [TestCase(3, false, Description = "3 tokens: the prefill pair (attention, store)")]
    [TestCase(1, false, Description = "one token: decode + combine, split-K over 72 rows")]
    [TestCase(1, true, Description = "one token, caches bound as past and present")]
    public void WindowAttentionMatchesTheReference(int seq, bool inPlace)
    {
        const int batch = 2, dk = 16, dv = 8;
        var a = WindowAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), 70, 2, 0f);
        int rows = a.CacheRows, hkv = 2;
        var (q, k, v) = Qkv(batch, seq, 4, hkv, dk, dv, 1);
        var pastK = Seeded.Uniform(11, batch * hkv * rows * dk);
        var pastV = Seeded.Uniform(12, batch * hkv * rows * dv);
        long[] pastPosition = [3, 80];
        var want = WindowAttentionReference.Run(a, batch, seq, dk, dv, q, k, v, pastK, pastV, pastPosition);

        nint pk = Put(pastK), pv = Put(pastV), pp = Put(pastPosition);
        var d = new WindowAttentionDevice(Put(q), Put(k), Put(v), pk, pv, pp, Garbage(batch * seq * 4 * dv * 4),
            inPlace ? pk : Garbage(pastK.Length * 4), inPlace ? pv : Garbage(pastV.Length * 4), inPlace ? pp : Garbage(batch * 8));
        using var launcher = new EmulatorLauncher(multiprocessors: 4);
        WindowAttentionCudaLaunches.Run(launcher, a, new QkvShapes(batch, seq, dk, dv), false, CudaActivation.Float32, d);

        Assert.That(launcher.Outstanding, Is.Zero, "scratch freed");
        Assert.That(launcher.LaunchCount, Is.EqualTo(2), "decode + combine for one token, attention + store for several");
        Close(d.Output, want.Output, "output");
        Close(d.PresentKeyCache, want.KeyCache, "present_key_cache");
        Close(d.PresentValueCache, want.ValueCache, "present_value_cache");
        Assert.That(Longs(d.PresentPosition, batch), Is.EqualTo(want.Position));
    }

    [TestCase(5, 4, 1, false, Description = "5 tokens cross a segment boundary")]
    [TestCase(1, 40, 4, false, Description = "split-K over 80 rows")]
    [TestCase(1, 40, 4, true, Description = "in place: the in-place-safe prefill pair, nothing copied")]
    public void SegmentAttentionMatchesTheReference(int seq, int segmentLength, int multiprocessors, bool inPlace)
    {
        const int batch = 2, hkv = 2, dk = 16, dv = 8;
        var a = SegmentAttentionAttributes.Validate(HeadAttributes.Validate(4, hkv, 0f), segmentLength);
        var (q, k, v) = Qkv(batch, seq, 4, hkv, dk, dv, 2);
        var n = batch * hkv * segmentLength;
        float[] mk = Seeded.Uniform(21, n * dk), mv = Seeded.Uniform(22, n * dv), sk = Seeded.Uniform(23, n * dk), sv = Seeded.Uniform(24, n * dv);
        long[] pastPosition = [2, segmentLength * 2 + 1];
        var want = SegmentAttentionReference.Run(a, batch, seq, dk, dv, q, k, v, mk, mv, sk, sv, pastPosition);

        nint pmk = Put(mk), pmv = Put(mv), psk = Put(sk), psv = Put(sv), pp = Put(pastPosition);
        var d = new SegmentAttentionDevice(Put(q), Put(k), Put(v), pmk, pmv, psk, psv, pp, Garbage(batch * seq * 4 * dv * 4),
            Present(inPlace, pmk, n * dk * 4), Present(inPlace, pmv, n * dv * 4), Present(inPlace, psk, n * dk * 4), Present(inPlace, psv, n * dv * 4), Present(inPlace, pp, batch * 8));
        using var launcher = new EmulatorLauncher(multiprocessors);
        SegmentAttentionCudaLaunches.Run(launcher, a, new QkvShapes(batch, seq, dk, dv), CudaActivation.Float32, d);

        Assert.That(launcher.Outstanding, Is.Zero, "scratch freed");
        Close(d.Output, want.Output, "output");
        Close(d.PresentMemoryKey, want.MemoryKey, "present_memory_key");
        Close(d.PresentMemoryValue, want.MemoryValue, "present_memory_value");
        Close(d.PresentSegmentKey, want.SegmentKey, "present_segment_key");
        Close(d.PresentSegmentValue, want.SegmentValue, "present_segment_value");
        Assert.That(Longs(d.PresentPosition, batch), Is.EqualTo(want.Position));
    }

    [TestCase(CompressKind.Linear, 6, 4, 1, false, Description = "6 tokens, evictions into the linear state")]
    [TestCase(CompressKind.Linear, 1, 4, 1, true, Description = "in place")]
    [TestCase(CompressKind.Mean, 4, 70, 4, false, Description = "split-K over 71 rows")]
    public void HybridAttentionMatchesTheReference(CompressKind compress, int seq, int window, int multiprocessors, bool inPlace)
    {
        const int batch = 2, hkv = 2, dk = 16, dv = 40;
        var a = HybridAttentionAttributes.Validate(HeadAttributes.Validate(4, hkv, 0f), window, compress, 1e-6f);
        var (q, k, v) = Qkv(batch, seq, 4, hkv, dk, dv, 3);
        var rows = a.CompressedValueRows(dk);
        var n = batch * hkv;
        float[] pk = Seeded.Uniform(31, n * window * dk), pv = Seeded.Uniform(32, n * window * dv);
        float[] ck = Seeded.Uniform(33, n * dk, 1f, 3f), cv = Seeded.Uniform(34, n * rows * dv);
        long[] pastPosition = [1, window + 3];
        var want = HybridAttentionReference.Run(a, batch, seq, dk, dv, q, k, v, pk, pv, pastPosition, ck, cv);

        nint ppk = Put(pk), ppv = Put(pv), pp = Put(pastPosition), pck = Put(ck), pcv = Put(cv);
        var d = new HybridAttentionDevice(Put(q), Put(k), Put(v), ppk, ppv, pp, pck, pcv, Garbage(batch * seq * 4 * dv * 4),
            Present(inPlace, ppk, pk.Length * 4), Present(inPlace, ppv, pv.Length * 4), Present(inPlace, pp, batch * 8), Present(inPlace, pck, ck.Length * 4), Present(inPlace, pcv, cv.Length * 4));
        using var launcher = new EmulatorLauncher(multiprocessors);
        HybridAttentionCudaLaunches.Run(launcher, a, new QkvShapes(batch, seq, dk, dv), CudaActivation.Float32, d);

        Assert.That(launcher.Outstanding, Is.Zero, "scratch freed");
        Close(d.Output, want.Output, "output");
        Close(d.PresentKey, want.Key, "present_key");
        Close(d.PresentValue, want.Value, "present_value");
        Close(d.PresentCompressedKey, want.CompressedKey, "present_compressed_key");
        Close(d.PresentCompressedValue, want.CompressedValue, "present_compressed_value");
        Assert.That(Longs(d.PresentPosition, batch), Is.EqualTo(want.Position));
    }

    [TestCase(SummaryKind.Moving, false)]
    [TestCase(SummaryKind.Ema, true)]
    public void SummaryAttentionMatchesTheReference(SummaryKind kind, bool inPlace)
    {
        const int batch = 2, hkv = 2, dk = 16, dv = 8, seq = 5;
        var moving = kind == SummaryKind.Moving;
        var a = SummaryAttentionAttributes.Validate(HeadAttributes.Validate(4, hkv, 0f), kind, moving ? 3 : 0, 0.8f, moving ? 1 : 3);
        var (q, k, v) = Qkv(batch, seq, 4, hkv, dk, dv, 4);
        // The moving summary's sums and ring are redundant: a consistent past state comes from 7 earlier tokens.
        const int earlier = 7;
        var (q0, k0, v0) = Qkv(batch, earlier, 4, hkv, dk, dv, 6);
        var past = SummaryAttentionReference.Run(a, batch, earlier, dk, dv, q0, k0, v0);
        float[] ks = ToFloat(past.KeySummary), vs = ToFloat(past.ValueSummary);
        float[] kw = ToFloat(past.KeyWindow), vw = ToFloat(past.ValueWindow);
        var pastCount = past.Count;
        var want = SummaryAttentionReference.Run(a, batch, seq, dk, dv, q, k, v, ks, vs, pastCount, moving ? kw : null, moving ? vw : null);

        nint pks = Put(ks), pvs = Put(vs), pc = Put(pastCount), pkw = moving ? Put(kw) : 0, pvw = moving ? Put(vw) : 0;
        var d = new SummaryAttentionDevice(Put(q), Put(k), Put(v), pks, pvs, pc, pkw, pvw, Garbage(batch * seq * 4 * dv * 4),
            Present(inPlace, pks, ks.Length * 4), Present(inPlace, pvs, vs.Length * 4), Present(inPlace, pc, batch * 8),
            moving ? Present(inPlace, pkw, kw.Length * 4) : 0, moving ? Present(inPlace, pvw, vw.Length * 4) : 0);
        using var launcher = new EmulatorLauncher();
        SummaryAttentionCudaLaunches.Run(launcher, a, new QkvShapes(batch, seq, dk, dv), CudaActivation.Float32, d);

        Assert.That(launcher.Outstanding, Is.Zero, "scratch freed");
        Close(d.Output, want.Output, "output");
        Close(d.PresentKeySummary, want.KeySummary, "present_key_summary");
        Close(d.PresentValueSummary, want.ValueSummary, "present_value_summary");
        Assert.That(Longs(d.PresentCount, batch), Is.EqualTo(want.Count));
    }

    [TestCase(UpdateRule.Linear, 40, false, Description = "the chunked prefill kernel")]
    [TestCase(UpdateRule.Linear, 40, true, Description = "the prefill kernel in place, two column blocks")]
    [TestCase(UpdateRule.GatedDelta, 3, true, Description = "the recurrence, in place")]
    public void LinearAttentionMatchesTheReference(UpdateRule rule, int seq, bool inPlace)
    {
        const int batch = 2, hkv = 2, dk = 16, dv = 72;
        var a = LinearAttentionAttributes.Validate(4, hkv, FeatureMap.EluPlusOne, 1, 1e-6f, 0f, rule, 0.9f);
        var (q, k, v) = Qkv(batch, seq, 4, hkv, dk, dv, 5);
        var gated = UpdateRules.IsGated(rule);
        var delta = UpdateRules.IsDelta(rule);
        var decay = gated ? Seeded.Uniform(51, batch * seq * hkv * dk, -0.5f, 0f) : null;
        var beta = delta ? Seeded.Uniform(52, batch * seq * hkv, 0f, 1f) : null;
        var state = Seeded.Uniform(53, batch * hkv * dk * dv);
        var normalizer = Seeded.Uniform(54, batch * hkv * dk, 0.5f, 2f);
        var want = LinearAttentionReference.Run(a, batch, seq, dk, dv, q, k, v, state, normalizer, decay, beta);

        nint ps = Put(state), pn = Put(normalizer);
        var shapes = new LinearAttentionShapes(batch, seq, dk, dv, true, true,
            gated ? GateLayout.PerKey : GateLayout.None, delta ? BetaLayout.PerHead : BetaLayout.None);
        var d = new LinearAttentionDevice(Put(q), Put(k), Put(v), ps, pn, decay != null ? Put(decay) : 0, beta != null ? Put(beta) : 0,
            Garbage(batch * seq * 4 * dv * 4), inPlace ? ps : Garbage(state.Length * 4), inPlace ? pn : Garbage(normalizer.Length * 4));
        using var launcher = new EmulatorLauncher();
        LinearAttentionCudaLaunches.Run(launcher, a, shapes, CudaActivation.Float32, d);

        Assert.That(launcher.Outstanding, Is.Zero, "scratch freed");
        Close(d.Output, want.Output, "output");
        Close(d.PresentState, want.State, "present_state");
        Close(d.PresentNormalizer, want.Normalizer, "present_normalizer");
    }

    [Test]
    public void Float16ActivationsTakeTheirOwnOffsetsThroughTheTokenLoopAndThePrefill()
    {
        // Window: 2 rows x 3 tokens of 2-byte activations through the prefill pair.
        const int batch = 2, seq = 3, hkv = 2, dk = 16, dv = 8;
        var w = WindowAttentionAttributes.Validate(HeadAttributes.Validate(4, hkv, 0f), 6, 1, 0f);
        var (q, k, v) = Qkv(batch, seq, 4, hkv, dk, dv, 7);
        (q, k, v) = (Half(q), Half(k), Half(v));
        var pastK = Seeded.Uniform(71, batch * hkv * w.CacheRows * dk);
        var pastV = Seeded.Uniform(72, batch * hkv * w.CacheRows * dv);
        long[] position = [2, 9];
        var want = WindowAttentionReference.Run(w, batch, seq, dk, dv, q, k, v, pastK, pastV, position);
        var d = new WindowAttentionDevice(PutHalf(q), PutHalf(k), PutHalf(v), Put(pastK), Put(pastV), Put(position),
            Garbage(batch * seq * 4 * dv * 2), Garbage(pastK.Length * 4), Garbage(pastV.Length * 4), Garbage(batch * 8));
        using (var launcher = new EmulatorLauncher())
        {
            WindowAttentionCudaLaunches.Run(launcher, w, new QkvShapes(batch, seq, dk, dv), false, CudaActivation.Float16, d);
        }
        TensorAssert.Close(HalfFloats(d.Output, want.Output.Length), want.Output, Tolerance.Float16, "window output");
        Close(d.PresentKeyCache, want.KeyCache, "window present_key_cache");

        // LinearAttention prefill on the tensor-core path (float16 mma.sync, emulated).
        const int tokens = 70, ldv = 32;
        var a = LinearAttentionAttributes.Validate(4, hkv, FeatureMap.EluPlusOne, 1, 1e-6f, 0f, UpdateRule.Linear, 0.95f);
        var (lq, lk, lv) = Qkv(1, tokens, 4, hkv, dk, ldv, 8);
        (lq, lk, lv) = (Half(lq), Half(lk), Half(lv));
        var wantLinear = LinearAttentionReference.Run(a, 1, tokens, dk, ldv, lq, lk, lv);
        var ld = new LinearAttentionDevice(PutHalf(lq), PutHalf(lk), PutHalf(lv), 0, 0, 0, 0, Garbage(tokens * 4 * ldv * 2),
            Garbage(hkv * dk * ldv * 4), Garbage(hkv * dk * 4));
        using (var launcher = new EmulatorLauncher())
        {
            LinearAttentionCudaLaunches.Run(launcher, a, new LinearAttentionShapes(1, tokens, dk, ldv, false, false), CudaActivation.Float16, ld);
        }
        TensorAssert.Close(HalfFloats(ld.Output, wantLinear.Output.Length), wantLinear.Output, Tolerance.Float16, "linear output");
        Close(ld.PresentState, wantLinear.State, "linear present_state");
    }
}
