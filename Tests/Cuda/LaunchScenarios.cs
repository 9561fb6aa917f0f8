using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Operators.WindowAttention;

namespace OnnxAttention.Tests.Cuda;

/// <summary>Runs each operator's CUDA launch plan on a <see cref="RecordingLauncher"/> with fake device pointers.</summary>
public static class LaunchScenarios
{
    public static (RecordingLauncher Launcher, LinearAttentionDevice Device) Linear(UpdateRule rule, int batch, int seq, int dk, int dv,
        int qHeads = 4, int kvHeads = 2, CudaActivation act = CudaActivation.Float32, int maxShared = 227 * 1024,
        bool inPlace = false, bool past = true, bool stateOutputs = true, GateLayout gate = GateLayout.PerKey, BetaLayout beta = BetaLayout.PerHead)
    {
        var l = new RecordingLauncher(maxDynamicSharedBytes: maxShared);
        var a = LinearAttentionAttributes.Validate(qHeads, kvHeads, FeatureMap.EluPlusOne, 1, 1e-6f, 0f, rule, 0.9f);
        var shapes = new LinearAttentionShapes(batch, seq, dk, dv, past, past,
            UpdateRules.IsGated(rule) ? gate : GateLayout.None, UpdateRules.IsDelta(rule) ? beta : BetaLayout.None);
        nint pastState = past ? l.Fake() : 0, pastNorm = past ? l.Fake() : 0;
        var d = new LinearAttentionDevice(l.Fake(), l.Fake(), l.Fake(), pastState, pastNorm,
            UpdateRules.IsGated(rule) ? l.Fake() : 0, UpdateRules.IsDelta(rule) ? l.Fake() : 0, l.Fake(),
            !stateOutputs ? 0 : inPlace ? pastState : l.Fake(), !stateOutputs ? 0 : inPlace ? pastNorm : l.Fake());
        LinearAttentionCudaLaunches.Run(l, a, shapes, act, d);
        return (l, d);
    }

    public static (RecordingLauncher Launcher, WindowAttentionDevice Device) Window(int batch, int seq, int dk, int dv, int window, int sinks,
        int qHeads = 4, int kvHeads = 2, CudaActivation act = CudaActivation.Float16, int multiprocessors = 132, bool inPlace = false,
        bool past = true, bool sharedPosition = false, bool cacheOutputs = true)
    {
        var l = new RecordingLauncher(multiprocessors);
        var a = WindowAttentionAttributes.Validate(HeadAttributes.Validate(qHeads, kvHeads, 0f), window, sinks, 0f);
        nint pk = past ? l.Fake() : 0, pv = past ? l.Fake() : 0, pp = past ? l.Fake() : 0;
        var d = new WindowAttentionDevice(l.Fake(), l.Fake(), l.Fake(), pk, pv, pp, l.Fake(),
            !cacheOutputs ? 0 : inPlace ? pk : l.Fake(), !cacheOutputs ? 0 : inPlace ? pv : l.Fake(), inPlace ? pp : l.Fake());
        WindowAttentionCudaLaunches.Run(l, a, new QkvShapes(batch, seq, dk, dv), sharedPosition, act, d);
        return (l, d);
    }

    public static (RecordingLauncher Launcher, SegmentAttentionDevice Device) Segment(int batch, int seq, int dk, int dv, int segmentLength,
        int qHeads = 4, int kvHeads = 2, CudaActivation act = CudaActivation.Float32, int multiprocessors = 132, bool inPlace = false, bool past = true)
    {
        var l = new RecordingLauncher(multiprocessors);
        var a = SegmentAttentionAttributes.Validate(HeadAttributes.Validate(qHeads, kvHeads, 0f), segmentLength);
        nint Past() => past ? l.Fake() : 0;
        nint mk = Past(), mv = Past(), sk = Past(), sv = Past(), pp = Past();
        nint Present(nint p) => inPlace ? p : l.Fake();
        var d = new SegmentAttentionDevice(l.Fake(), l.Fake(), l.Fake(), mk, mv, sk, sv, pp, l.Fake(),
            Present(mk), Present(mv), Present(sk), Present(sv), Present(pp));
        SegmentAttentionCudaLaunches.Run(l, a, new QkvShapes(batch, seq, dk, dv), act, d);
        return (l, d);
    }

    /// <summary>m of the compress=hedgehog scenarios (2m = 6 features).</summary>
    public const int HedgehogProjections = 3;

    public static (RecordingLauncher Launcher, HybridAttentionDevice Device) Hybrid(CompressKind compress, int batch, int seq, int dk, int dv,
        int window, int qHeads = 4, int kvHeads = 2, CudaActivation act = CudaActivation.Float32, int multiprocessors = 132,
        bool inPlace = false, bool past = true)
    {
        var l = new RecordingLauncher(multiprocessors);
        var hedgehog = compress == CompressKind.Hedgehog;
        var a = HybridAttentionAttributes.Validate(HeadAttributes.Validate(qHeads, kvHeads, 0f), window, compress, 1e-6f, hedgehog ? HedgehogProjections : 0);
        nint Past() => past ? l.Fake() : 0;
        nint pk = Past(), pv = Past(), pp = Past(), ck = Past(), cv = Past();
        nint Present(nint p) => inPlace ? p : l.Fake();
        var d = new HybridAttentionDevice(l.Fake(), l.Fake(), l.Fake(), pk, pv, pp, ck, cv, l.Fake(),
            Present(pk), Present(pv), Present(pp), Present(ck), Present(cv));
        if (hedgehog)
        {
            d = d with { FeatureQueryWeight = l.Fake(), FeatureQueryBias = l.Fake(), FeatureKeyWeight = l.Fake(), FeatureKeyBias = l.Fake(), Mix = l.Fake() };
        }
        HybridAttentionCudaLaunches.Run(l, a, new QkvShapes(batch, seq, dk, dv), act, d);
        return (l, d);
    }

    public static (RecordingLauncher Launcher, SummaryAttentionDevice Device) Summary(SummaryKind kind, int batch, int seq, int dk, int dv,
        int qHeads = 4, int kvHeads = 2, CudaActivation act = CudaActivation.Float32, bool inPlace = false, bool past = true)
    {
        var l = new RecordingLauncher();
        var a = SummaryAttentionAttributes.Validate(HeadAttributes.Validate(qHeads, kvHeads, 0f), kind,
            kind == SummaryKind.Moving ? 5 : 0, 0.9f, kind == SummaryKind.Ema ? 3 : 1);
        var moving = kind == SummaryKind.Moving;
        nint Past(bool used = true) => past && used ? l.Fake() : 0;
        nint ks = Past(), vs = Past(), c = Past(), kw = Past(moving), vw = Past(moving);
        nint Present(nint p) => inPlace ? p : l.Fake();
        var d = new SummaryAttentionDevice(l.Fake(), l.Fake(), l.Fake(), ks, vs, c, kw, vw, l.Fake(),
            Present(ks), Present(vs), Present(c), moving ? Present(kw) : 0, moving ? Present(vw) : 0);
        SummaryAttentionCudaLaunches.Run(l, a, new QkvShapes(batch, seq, dk, dv), act, d);
        return (l, d);
    }

    /// <summary>A broad matrix of calls, named for the test runner.</summary>
    public static IEnumerable<(string Name, RecordingLauncher Launcher)> Matrix()
    {
        foreach (var rule in Enum.GetValues<UpdateRule>())
        {
            foreach (var seq in new[] { 1, 5, 100 })
            {
                yield return ($"linear {rule} T={seq}", Linear(rule, 2, seq, 64, 96).Launcher);
                yield return ($"linear {rule} T={seq} f16 in place", Linear(rule, 1, seq, 128, 128, act: CudaActivation.Float16, inPlace: true).Launcher);
            }
        }
        yield return ("linear gated per head, shared beta", Linear(UpdateRule.GatedDelta, 2, 3, 32, 32, gate: GateLayout.PerHead, beta: BetaLayout.Shared).Launcher);
        yield return ("linear no past, no state outputs", Linear(UpdateRule.Linear, 2, 40, 60, 40, past: false, stateOutputs: false).Launcher);
        foreach (var (seq, sms) in new[] { (1, 132), (1, 1), (3, 132), (3, 1) })
        {
            yield return ($"window T={seq} sms={sms}", Window(2, seq, 64, 64, 300, 4, multiprocessors: sms).Launcher);
            yield return ($"window T={seq} sms={sms} shared position in place", Window(3, seq, 32, 16, 40, 0, multiprocessors: sms, inPlace: true, sharedPosition: true).Launcher);
            yield return ($"segment T={seq} sms={sms}", Segment(2, seq, 64, 32, 100, multiprocessors: sms).Launcher);
            yield return ($"segment T={seq} sms={sms} in place", Segment(2, seq, 16, 16, 8, multiprocessors: sms, inPlace: true).Launcher);
            foreach (var compress in HybridAttentionCudaOperator.Compressions)
            {
                yield return ($"hybrid {compress} T={seq} sms={sms}", Hybrid(compress, 2, seq, 64, 64, 200, multiprocessors: sms).Launcher);
                yield return ($"hybrid {compress} T={seq} sms={sms} in place, no past", Hybrid(compress, 1, seq, 60, 40, 16, multiprocessors: sms, inPlace: true, past: false).Launcher);
            }
        }
        yield return ("window T=65 no past, caches left out", Window(2, 65, 64, 32, 16, 2, past: false, cacheOutputs: false).Launcher);
        yield return ("window T=65 f32 in place, shared position", Window(2, 65, 64, 64, 16, 2, act: CudaActivation.Float32, inPlace: true, sharedPosition: true).Launcher);
        yield return ("segment T=65 f16 in place", Segment(2, 65, 64, 64, 16, act: CudaActivation.Float16, inPlace: true).Launcher);
        yield return ("segment T=65 no past", Segment(1, 65, 60, 40, 16, past: false).Launcher);
        foreach (var compress in HybridAttentionCudaOperator.Compressions)
        {
            yield return ($"hybrid {compress} T=65 in place", Hybrid(compress, 2, 65, 64, 64, 16, inPlace: true).Launcher);
            yield return ($"hybrid {compress} T=65 f16 no past", Hybrid(compress, 1, 65, 60, 40, 16, act: CudaActivation.Float16, past: false).Launcher);
        }
        foreach (var kind in Enum.GetValues<SummaryKind>())
        {
            yield return ($"summary {kind} T=1", Summary(kind, 2, 1, 64, 64).Launcher);
            yield return ($"summary {kind} T=7 in place", Summary(kind, 1, 7, 32, 48, inPlace: true).Launcher);
        }
    }
}
