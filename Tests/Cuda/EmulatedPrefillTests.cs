using NUnit.Framework;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// The multi-token kernels of WindowAttention, SegmentAttention and HybridAttention (one attention launch per call,
/// then the in-place-safe state launches) through the C# launch plans on the host emulation, against the
/// double-precision references: prompts of 1, 2, 63, 64, 65 and 150 tokens, a prompt split in two calls (the second
/// continuing from the first's present state), states bound in place, windows shorter and longer than the prompt,
/// sinks, segment boundaries crossed inside a prompt, evictions into the hybrid summaries (mean, linear, and hedgehog's
/// learned-feature memory), float16 activations.
/// Emulated only: nothing here has run on a GPU.
/// </summary>
[TestFixture]
[NonParallelizable]
public unsafe class EmulatedPrefillTests : EmulatedMemory
{
    private const int QHeads = 4, KvHeads = 2, Dk = 16, Dv = 8;

    /// <summary>The calls a prompt of <paramref name="seq"/> tokens is fed in: one, or [0, split) then the rest.</summary>
    private static IEnumerable<(int Start, int Count)> Pieces(int seq, int split) =>
        split <= 0 || split >= seq ? [(0, seq)] : [(0, split), (split, seq - split)];

    private sealed record Activations(float[] Q, float[] K, float[] V, bool Half, int Batch, int Seq, int Dv)
    {
        public int KeyWidth => KvHeads * Dk;
    }

    private (nint Q, nint K, nint V, nint Output) Piece(Activations x, int start, int count)
    {
        float[] Cut(float[] t, int width) => SequenceSlices.Slice(t, x.Batch, x.Seq, width, start, count);
        return (PutActivation(Cut(x.Q, QHeads * Dk), x.Half), PutActivation(Cut(x.K, KvHeads * Dk), x.Half),
            PutActivation(Cut(x.V, KvHeads * x.Dv), x.Half), Garbage(x.Batch * count * QHeads * x.Dv * (x.Half ? 2 : 4)));
    }

    private static void Gather(nint output, Activations x, float[] whole, int start, int count)
    {
        var n = x.Batch * count * QHeads * x.Dv;
        SequenceSlices.Place(x.Half ? HalfFloats(output, n) : Floats(output, n), whole, x.Batch, x.Seq, QHeads * x.Dv, start, count);
    }

    private static Activations Make(int batch, int seq, int dv, bool half, int seed)
    {
        var (q, k, v) = Qkv(batch, seq, QHeads, KvHeads, Dk, dv, seed);
        return half ? new(Half(q), Half(k), Half(v), true, batch, seq, dv) : new(q, k, v, false, batch, seq, dv);
    }

    private static void AssertOutput(float[] got, double[] want, bool half) =>
        TensorAssert.Close(got, want, half ? Tolerance.Float16 : Tolerance.Float32, "output");

    private static void AssertLaunches(int launches, int count, int perPrompt, string what)
    {
        if (count > 1)
        {
            Assert.That(launches, Is.EqualTo(perPrompt), $"{what}: launches for a call of {count} tokens");
        }
    }

    /// <summary>
    /// Feeds a prompt to a launch plan in its <see cref="Pieces"/> and gives the gathered output. <paramref name="call"/>
    /// binds one piece (its activations and output) to the current state, runs the plan, carries the present state on and
    /// says whether it bound the states in place. A call of more than one token takes <paramref name="perPrompt"/>
    /// launches; so does any call bound in place where <paramref name="inPlaceRule"/> names that rule.
    /// </summary>
    private float[] FeedPrompt(EmulatorLauncher launcher, Activations x, int split, int perPrompt, string what, string? inPlaceRule,
        Func<(nint Q, nint K, nint V, nint Output), int, bool> call)
    {
        var output = new float[x.Batch * x.Seq * QHeads * x.Dv];
        foreach (var (start, count) in Pieces(x.Seq, split))
        {
            var piece = Piece(x, start, count);
            var before = launcher.LaunchCount;
            var bound = call(piece, count);
            AssertLaunches(launcher.LaunchCount - before, count, perPrompt, what);
            if (bound && inPlaceRule is not null)
            {
                Assert.That(launcher.LaunchCount - before, Is.EqualTo(perPrompt), inPlaceRule);
            }
            Gather(piece.Output, x, output, start, count);
        }
        Assert.That(launcher.Outstanding, Is.Zero, "scratch freed");
        return output;
    }

    [TestCase(2, 1, 16, 2, 0, false, false, true, Description = "one token: the decode kernel")]
    [TestCase(2, 2, 16, 2, 0, false, false, true)]
    [TestCase(2, 63, 16, 2, 0, false, false, true, Description = "window shorter than the prompt, sinks")]
    [TestCase(2, 64, 100, 0, 0, false, false, false, Description = "window longer than the prompt, no past: causal")]
    [TestCase(2, 65, 16, 3, 0, true, false, true, Description = "in place")]
    [TestCase(2, 65, 16, 2, 40, false, false, true, Description = "split 40 + 25")]
    [TestCase(2, 65, 16, 2, 30, true, false, true, Description = "split 30 + 35, in place")]
    [TestCase(2, 64, 8, 70, 0, false, false, false, Description = "sinks covering the whole prompt, from the start")]
    [TestCase(1, 150, 24, 2, 0, false, false, true, Description = "a longer prompt")]
    [TestCase(2, 65, 16, 2, 0, false, true, true, Description = "float16")]
    [TestCase(2, 65, 16, 2, 30, true, false, true, true, Description = "one position [1] shared by every row, split, in place")]
    public void WindowPromptsMatchTheReference(int batch, int seq, int window, int sinks, int split, bool inPlace, bool half, bool past,
        bool sharedPosition = false)
    {
        var a = WindowAttentionAttributes.Validate(HeadAttributes.Validate(QHeads, KvHeads, 0f), window, sinks, 0f);
        var x = Make(batch, seq, Dv, half, 11);
        var n = batch * KvHeads * a.CacheRows;
        float[]? pastK = past ? Seeded.Uniform(12, n * Dk) : null, pastV = past ? Seeded.Uniform(13, n * Dv) : null;
        long[]? pastPosition = !past ? null : sharedPosition ? [21] : new long[] { 3, 40 }[..batch];
        if (past)
        {
            MakeSinksConsistent(a, batch, pastK!, Dk, pastPosition!);
            MakeSinksConsistent(a, batch, pastV!, Dv, pastPosition!);
        }
        var want = WindowAttentionReference.Run(a, batch, seq, Dk, Dv, x.Q, x.K, x.V, pastK, pastV, pastPosition);

        nint key = past ? Put(pastK!) : 0, value = past ? Put(pastV!) : 0, position = past ? Put(pastPosition!) : 0;
        using var launcher = new EmulatorLauncher(multiprocessors: 4);
        var output = FeedPrompt(launcher, x, split, 2, "window", null, (p, count) =>
        {
            var bound = inPlace && key != 0;
            var d = new WindowAttentionDevice(p.Q, p.K, p.V, key, value, position, p.Output, Present(bound, key, n * Dk * 4),
                Present(bound, value, n * Dv * 4), Present(bound, position, (sharedPosition ? 1 : batch) * 8));
            WindowAttentionCudaLaunches.Run(launcher, a, new QkvShapes(batch, count, Dk, Dv), sharedPosition,
                half ? CudaActivation.Float16 : CudaActivation.Float32, d);
            (key, value, position) = (d.PresentKeyCache, d.PresentValueCache, d.PresentPosition);
            return bound;
        });

        AssertOutput(output, want.Output, half);
        Close(key, want.KeyCache, "present_key_cache");
        Close(value, want.ValueCache, "present_value_cache");
        Assert.That(Longs(position, want.Position.Length), Is.EqualTo(want.Position));
    }

    /// <summary>
    /// A reachable past cache: a sink position still inside the past ring has the same key in its sink row and its
    /// ring row (random rows would differ, and the operator may read either).
    /// </summary>
    private static void MakeSinksConsistent(WindowAttentionAttributes a, int batch, float[] cache, int dim, long[] position)
    {
        for (var b = 0; b < batch; b++)
            for (var h = 0; h < KvHeads; h++)
            {
                var slice = (b * KvHeads + h) * a.CacheRows;
                var p = position[position.Length == 1 ? 0 : b];
                for (long j = Math.Max(0, p - a.Window); j < Math.Min(a.Sinks, p); j++)
                {
                    Array.Copy(cache, (slice + j) * dim, cache, (slice + a.Sinks + j % a.Window) * dim, dim);
                }
            }
    }

    [TestCase(2, 1, 8, 0, true, false, true, Description = "decode step in place: attention + store, nothing copied")]
    [TestCase(2, 2, 8, 0, false, false, true)]
    [TestCase(2, 63, 8, 0, false, false, true, Description = "many segment boundaries inside the prompt")]
    [TestCase(2, 64, 16, 0, true, false, true, Description = "in place")]
    [TestCase(2, 65, 8, 30, false, false, true, Description = "split 30 + 35")]
    [TestCase(2, 65, 8, 21, true, false, true, Description = "split 21 + 44, in place")]
    [TestCase(2, 65, 100, 0, false, false, false, Description = "segment longer than the prompt, no past: causal")]
    [TestCase(1, 150, 32, 0, false, false, true, Description = "a longer prompt")]
    [TestCase(2, 65, 8, 0, false, true, true, Description = "float16")]
    public void SegmentPromptsMatchTheReference(int batch, int seq, int segmentLength, int split, bool inPlace, bool half, bool past)
    {
        var a = SegmentAttentionAttributes.Validate(HeadAttributes.Validate(QHeads, KvHeads, 0f), segmentLength);
        var x = Make(batch, seq, Dv, half, 21);
        var n = batch * KvHeads * segmentLength;
        float[]? mk = past ? Seeded.Uniform(22, n * Dk) : null, mv = past ? Seeded.Uniform(23, n * Dv) : null;
        float[]? sk = past ? Seeded.Uniform(24, n * Dk) : null, sv = past ? Seeded.Uniform(25, n * Dv) : null;
        long[]? pastPosition = past ? new long[] { 3, 2 * segmentLength + 5 }[..batch] : null;
        var want = SegmentAttentionReference.Run(a, batch, seq, Dk, Dv, x.Q, x.K, x.V, mk, mv, sk, sv, pastPosition);

        nint memoryKey = past ? Put(mk!) : 0, memoryValue = past ? Put(mv!) : 0, segmentKey = past ? Put(sk!) : 0;
        nint segmentValue = past ? Put(sv!) : 0, position = past ? Put(pastPosition!) : 0;
        using var launcher = new EmulatorLauncher(multiprocessors: 4);
        var output = FeedPrompt(launcher, x, split, 2, "segment", "in place: attention + store, whatever the length", (p, count) =>
        {
            var bound = inPlace && memoryKey != 0;
            var d = new SegmentAttentionDevice(p.Q, p.K, p.V, memoryKey, memoryValue, segmentKey, segmentValue, position, p.Output,
                Present(bound, memoryKey, n * Dk * 4), Present(bound, memoryValue, n * Dv * 4), Present(bound, segmentKey, n * Dk * 4),
                Present(bound, segmentValue, n * Dv * 4), Present(bound, position, batch * 8));
            SegmentAttentionCudaLaunches.Run(launcher, a, new QkvShapes(batch, count, Dk, Dv), half ? CudaActivation.Float16 : CudaActivation.Float32, d);
            (memoryKey, memoryValue, segmentKey, segmentValue, position) =
                (d.PresentMemoryKey, d.PresentMemoryValue, d.PresentSegmentKey, d.PresentSegmentValue, d.PresentPosition);
            return bound;
        });

        AssertOutput(output, want.Output, half);
        Close(memoryKey, want.MemoryKey, "present_memory_key");
        Close(memoryValue, want.MemoryValue, "present_memory_value");
        Close(segmentKey, want.SegmentKey, "present_segment_key");
        Close(segmentValue, want.SegmentValue, "present_segment_value");
        Assert.That(Longs(position, batch), Is.EqualTo(want.Position));
    }

    [TestCase(CompressKind.Linear, 2, 1, 8, 0, true, false, true, Description = "decode step in place: evicts into the past-aliased state")]
    [TestCase(CompressKind.Linear, 2, 2, 8, 0, false, false, true)]
    [TestCase(CompressKind.Linear, 2, 63, 8, 0, false, false, true, Description = "evictions inside the prompt")]
    [TestCase(CompressKind.Linear, 2, 64, 8, 0, true, false, true, Description = "in place")]
    [TestCase(CompressKind.Linear, 2, 65, 8, 20, false, false, true, Description = "split 20 + 45")]
    [TestCase(CompressKind.Linear, 2, 65, 100, 0, false, false, false, Description = "window longer than the prompt, no past: causal")]
    [TestCase(CompressKind.Linear, 1, 150, 16, 0, false, false, true, Description = "a longer prompt")]
    [TestCase(CompressKind.Linear, 2, 65, 8, 0, false, true, true, Description = "float16")]
    [TestCase(CompressKind.Mean, 2, 1, 8, 0, true, false, true, Description = "decode step in place")]
    [TestCase(CompressKind.Mean, 2, 2, 8, 0, false, false, true)]
    [TestCase(CompressKind.Mean, 2, 65, 8, 0, true, false, true, Description = "in place, evictions inside the prompt")]
    [TestCase(CompressKind.Mean, 2, 64, 8, 33, true, false, true, Description = "split 33 + 31, in place")]
    [TestCase(CompressKind.Mean, 2, 63, 8, 0, false, false, false, Description = "no past: the first evictions happen inside the prompt")]
    [TestCase(CompressKind.Mean, 2, 65, 8, 0, false, true, true, Description = "float16")]
    [TestCase(CompressKind.Hedgehog, 2, 1, 8, 0, false, false, true, Description = "decode step, separate buffers: the prompt kernels")]
    [TestCase(CompressKind.Hedgehog, 2, 1, 8, 0, true, false, true, Description = "decode step in place")]
    [TestCase(CompressKind.Hedgehog, 2, 2, 8, 0, false, false, true)]
    [TestCase(CompressKind.Hedgehog, 2, 63, 8, 0, false, false, false, Description = "no past: the first evictions happen inside the prompt")]
    [TestCase(CompressKind.Hedgehog, 2, 64, 8, 0, true, false, true, Description = "in place")]
    [TestCase(CompressKind.Hedgehog, 2, 65, 8, 20, true, false, true, Description = "split 20 + 45, in place")]
    [TestCase(CompressKind.Hedgehog, 2, 65, 100, 0, false, false, false, Description = "window longer than the prompt, no past")]
    [TestCase(CompressKind.Hedgehog, 2, 65, 8, 0, false, true, true, Description = "float16")]
    public void HybridPromptsMatchTheReference(CompressKind compress, int batch, int seq, int window, int split, bool inPlace, bool half, bool past)
    {
        const int dv = 40; // 64 value-column threads, two row splits: the split reduction runs
        var a = HybridAttentionAttributes.Validate(HeadAttributes.Validate(QHeads, KvHeads, 0f), window, compress, 1e-6f,
            compress == CompressKind.Hedgehog ? 3 : 0);
        var maps = Maps(a, Dk);
        var x = Make(batch, seq, dv, half, 31);
        var rows = a.CompressedValueRows(Dk);
        var features = a.CompressedKeyDim(Dk);
        var n = batch * KvHeads;
        float[]? pk = past ? Seeded.Uniform(32, n * window * Dk) : null, pv = past ? Seeded.Uniform(33, n * window * dv) : null;
        float[]? ck = past ? Seeded.Uniform(34, n * features, 1f, 3f) : null, cv = past ? Seeded.Uniform(35, n * rows * dv) : null;
        long[]? pastPosition = past ? new long[] { 2, window + 5 }[..batch] : null;
        var want = HybridAttentionReference.Run(a, batch, seq, Dk, dv, x.Q, x.K, x.V, pk, pv, pastPosition, ck, cv, maps);

        nint ringKey = past ? Put(pk!) : 0, ringValue = past ? Put(pv!) : 0, position = past ? Put(pastPosition!) : 0;
        nint compressedKey = past ? Put(ck!) : 0, compressedValue = past ? Put(cv!) : 0;
        using var launcher = new EmulatorLauncher(multiprocessors: 4);
        var perPrompt = compress == CompressKind.Hedgehog ? 4 : 3;
        var output = FeedPrompt(launcher, x, split, perPrompt, "hybrid", "in place: (features,) attention, compress, store, whatever the length", (p, count) =>
        {
            var bound = inPlace && ringKey != 0;
            var d = WithMaps(new HybridAttentionDevice(p.Q, p.K, p.V, ringKey, ringValue, position, compressedKey, compressedValue, p.Output,
                Present(bound, ringKey, n * window * Dk * 4), Present(bound, ringValue, n * window * dv * 4), Present(bound, position, batch * 8),
                Present(bound, compressedKey, n * features * 4), Present(bound, compressedValue, n * rows * dv * 4)), maps);
            HybridAttentionCudaLaunches.Run(launcher, a, new QkvShapes(batch, count, Dk, dv), half ? CudaActivation.Float16 : CudaActivation.Float32, d);
            (ringKey, ringValue, position, compressedKey, compressedValue) =
                (d.PresentKey, d.PresentValue, d.PresentPosition, d.PresentCompressedKey, d.PresentCompressedValue);
            return bound;
        });

        AssertOutput(output, want.Output, half);
        Close(ringKey, want.Key, "present_key");
        Close(ringValue, want.Value, "present_value");
        Close(compressedKey, want.CompressedKey, "present_compressed_key");
        Close(compressedValue, want.CompressedValue, "present_compressed_value");
        Assert.That(Longs(position, batch), Is.EqualTo(want.Position));
    }

    /// <summary>compress=hedgehog's seeded feature maps for these heads (the hybrid tests' own), or null for the other kinds.</summary>
    private static HybridAttentionReference.HedgehogMaps? Maps(HybridAttentionAttributes a, int dk) =>
        a.Compress != CompressKind.Hedgehog ? null
            : new HybridAttention.HybridAttentionCase(1, 1, a.Heads.QueryHeads, a.Heads.KvHeads, dk, 1, a.Window, "hedgehog", Seed: 37,
                Projections: a.Projections).Maps;

    private HybridAttentionDevice WithMaps(HybridAttentionDevice d, HybridAttentionReference.HedgehogMaps? maps) => maps is null ? d
        : d with
        {
            FeatureQueryWeight = Put(maps.QueryWeight),
            FeatureQueryBias = Put(maps.QueryBias),
            FeatureKeyWeight = Put(maps.KeyWeight),
            FeatureKeyBias = Put(maps.KeyBias),
            Mix = Put(maps.Mix),
        };

    [TestCase(3, 3, 60, 40, Description = "group 1, d_k 60, d_v 40")]
    [TestCase(8, 1, 20, 72, Description = "group 8, d_v 72 (three value columns a thread)")]
    public void AwkwardShapesMatchTheReferenceInEveryPromptKernel(int qHeads, int kvHeads, int dk, int dv)
    {
        const int batch = 2, seq = 65;
        var heads = HeadAttributes.Validate(qHeads, kvHeads, 0f);
        var (q, k, v) = (Seeded.Uniform(41, batch * seq * qHeads * dk), Seeded.Uniform(42, batch * seq * kvHeads * dk),
            Seeded.Uniform(43, batch * seq * kvHeads * dv));
        var shapes = new QkvShapes(batch, seq, dk, dv);
        using var launcher = new EmulatorLauncher(multiprocessors: 4);
        nint Out() => Garbage(batch * seq * qHeads * dv * 4);

        var w = WindowAttentionAttributes.Validate(heads, 20, 3, 5f);
        var wantWindow = WindowAttentionReference.Run(w, batch, seq, dk, dv, q, k, v);
        var n = batch * kvHeads * w.CacheRows;
        var window = new WindowAttentionDevice(Put(q), Put(k), Put(v), 0, 0, 0, Out(), Garbage(n * dk * 4), Garbage(n * dv * 4), Garbage(batch * 8));
        WindowAttentionCudaLaunches.Run(launcher, w, shapes, false, CudaActivation.Float32, window);
        Close(window.Output, wantWindow.Output, "window output (softcap 5)");
        Close(window.PresentKeyCache, wantWindow.KeyCache, "window present_key_cache");

        var g = SegmentAttentionAttributes.Validate(heads, 24);
        var wantSegment = SegmentAttentionReference.Run(g, batch, seq, dk, dv, q, k, v);
        var m = batch * kvHeads * 24;
        var segment = new SegmentAttentionDevice(Put(q), Put(k), Put(v), 0, 0, 0, 0, 0, Out(), Garbage(m * dk * 4), Garbage(m * dv * 4),
            Garbage(m * dk * 4), Garbage(m * dv * 4), Garbage(batch * 8));
        SegmentAttentionCudaLaunches.Run(launcher, g, shapes, CudaActivation.Float32, segment);
        Close(segment.Output, wantSegment.Output, "segment output");
        Close(segment.PresentMemoryValue, wantSegment.MemoryValue, "segment present_memory_value");
        Close(segment.PresentSegmentKey, wantSegment.SegmentKey, "segment present_segment_key");

        foreach (var compress in HybridAttentionCudaOperator.Compressions)
        {
            var hedgehog = compress == CompressKind.Hedgehog;
            var h = HybridAttentionAttributes.Validate(heads, 12, compress, 1e-6f, hedgehog ? 20 : 0);
            var maps = Maps(h, dk);
            var wantHybrid = HybridAttentionReference.Run(h, batch, seq, dk, dv, q, k, v, maps: maps);
            var r = batch * kvHeads;
            var rows = h.CompressedValueRows(dk);
            var hybrid = WithMaps(new HybridAttentionDevice(Put(q), Put(k), Put(v), 0, 0, 0, 0, 0, Out(), Garbage(r * 12 * dk * 4),
                Garbage(r * 12 * dv * 4), Garbage(batch * 8), Garbage(r * h.CompressedKeyDim(dk) * 4), Garbage(r * rows * dv * 4)), maps);
            HybridAttentionCudaLaunches.Run(launcher, h, shapes, CudaActivation.Float32, hybrid);
            Close(hybrid.Output, wantHybrid.Output, $"hybrid {compress} output");
            Close(hybrid.PresentCompressedKey, wantHybrid.CompressedKey, $"hybrid {compress} present_compressed_key");
            Close(hybrid.PresentCompressedValue, wantHybrid.CompressedValue, $"hybrid {compress} present_compressed_value");
            Close(hybrid.PresentValue, wantHybrid.Value, $"hybrid {compress} present_value");
        }
        Assert.That(launcher.Outstanding, Is.Zero, "scratch freed");
    }
}
