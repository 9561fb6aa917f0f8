using System.Text.RegularExpressions;
using NUnit.Framework;
using OnnxAttention.Operators.Cuda;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// Every kernel source compiled with NVRTC for the specialisations a host will ask for (head dims 64 and 128, each
/// activation type, every update rule and feature map, awkward sizes), checking the PTX for the entry points and the
/// launch shape the header comments promise. No GPU is needed: this proves the sources compile and agree with the
/// host-side formulas, not that they compute the right numbers (they have not been run on a GPU yet).
/// Without NVRTC these tests are ignored with the reason; .ci/run installs it.
/// </summary>
[TestFixture]
[Parallelizable(ParallelScope.Children)]
public partial class KernelCompileTests
{
    private static readonly CudaActivation[] Activations = [CudaActivation.Float32, CudaActivation.Float16, CudaActivation.BFloat16];
    private static readonly FeatureMap[] Maps = Enum.GetValues<FeatureMap>();

    private string _cacheRoot = "";

    [OneTimeSetUp]
    public void CreateCacheRoot() => _cacheRoot = Directory.CreateTempSubdirectory("onnxattention-ptx-").FullName;

    [OneTimeTearDown]
    public void DeleteCacheRoot() => Directory.Delete(_cacheRoot, recursive: true);

    public static IEnumerable<TestCaseData> LinearDecodeCases()
    {
        var n = 0;
        foreach (var dim in new[] { 64, 128 })
            foreach (var activation in Activations)
                foreach (var rule in Enum.GetValues<UpdateRule>())
                {
                    // Feature maps, normalisation, group sizes and gate/beta layouts rotate so each meets every rule and type.
                    var spec = new LinearAttentionDecodeSpecialization(dim, dim, group: 1 + n % 3 * 2, rule, Maps[n % Maps.Length],
                        normalize: n % 2 == 0, activation, gatePerKey: n % 4 < 2, betaPerHead: n % 3 != 0);
                    n++;
                    yield return new TestCaseData(spec).SetArgDisplayNames($"d{dim}", activation.ToString(), rule.ToString());
                }
        // Awkward shapes: a head dim that is not a multiple of 32, value columns split over blocks, a wide group.
        yield return new TestCaseData(new LinearAttentionDecodeSpecialization(60, 60, 2, UpdateRule.GatedDelta, FeatureMap.L2Norm,
            true, CudaActivation.Float16)).SetArgDisplayNames("d60", "Float16", "GatedDelta");
        yield return new TestCaseData(new LinearAttentionDecodeSpecialization(128, 128, 8, UpdateRule.Delta, FeatureMap.Identity,
            false, CudaActivation.BFloat16, blockColumns: 32)).SetArgDisplayNames("d128", "BFloat16", "Delta-cols32-group8");
        yield return new TestCaseData(new LinearAttentionDecodeSpecialization(256, 256, 1, UpdateRule.Linear, FeatureMap.EluPlusOne,
            true, CudaActivation.Float32)).SetArgDisplayNames("d256", "Float32", "Linear");
    }

    public static IEnumerable<TestCaseData> LinearPrefillCases()
    {
        var n = 0;
        foreach (var dim in new[] { 64, 128 })
            foreach (var activation in Activations)
            {
                var spec = new LinearAttentionPrefillSpecialization(dim, dim, group: 1 + n % 2 * 3, Maps[n % Maps.Length],
                    normalize: n % 2 == 0, activation);
                n++;
                yield return new TestCaseData(spec).SetArgDisplayNames($"d{dim}", activation.ToString());
            }
        yield return new TestCaseData(new LinearAttentionPrefillSpecialization(60, 40, 2, FeatureMap.SquaredRelu, true,
            CudaActivation.Float16, chunk: 16, blockColumns: 16)).SetArgDisplayNames("d60-dv40", "Float16", "chunk16-cols16");
        yield return new TestCaseData(new LinearAttentionPrefillSpecialization(128, 128, 1, FeatureMap.EluPlusOne, true,
            CudaActivation.BFloat16, chunk: 32, blockColumns: 128)).SetArgDisplayNames("d128", "BFloat16", "chunk32-cols128");
    }

    public static IEnumerable<TestCaseData> WindowDecodeCases()
    {
        var n = 0;
        foreach (var dim in new[] { 64, 128 })
            foreach (var activation in Activations)
            {
                var spec = new WindowAttentionDecodeSpecialization(dim, dim, group: 1 + n++ % 2 * 7, activation);
                yield return new TestCaseData(spec).SetArgDisplayNames($"d{dim}", activation.ToString());
            }
        yield return new TestCaseData(new WindowAttentionDecodeSpecialization(60, 40, 3, CudaActivation.Float16))
            .SetArgDisplayNames("d60-dv40", "Float16");
        yield return new TestCaseData(new WindowAttentionDecodeSpecialization(256, 256, 4, CudaActivation.BFloat16))
            .SetArgDisplayNames("d256", "BFloat16");
    }

    public static IEnumerable<TestCaseData> SegmentDecodeCases()
    {
        var n = 0;
        foreach (var dim in new[] { 64, 128 })
            foreach (var activation in Activations)
            {
                yield return new TestCaseData(new SegmentAttentionDecodeSpecialization(dim, dim, 1 + n++ % 2 * 3, activation))
                    .SetArgDisplayNames($"d{dim}", activation.ToString());
            }
        yield return new TestCaseData(new SegmentAttentionDecodeSpecialization(60, 40, 5, CudaActivation.BFloat16))
            .SetArgDisplayNames("d60-dv40", "BFloat16");
    }

    public static IEnumerable<TestCaseData> HybridDecodeCases()
    {
        var n = 0;
        foreach (var dim in new[] { 64, 128 })
            foreach (var activation in Activations)
            {
                // Each activation type meets both compress kinds across the two head dims.
                var compress = (n + (dim == 128 ? 1 : 0)) % 2 == 0 ? CompressKind.Linear : CompressKind.Mean;
                n++;
                yield return new TestCaseData(new HybridAttentionDecodeSpecialization(dim, dim, 1 + n % 2 * 3, compress, activation))
                    .SetArgDisplayNames($"d{dim}", activation.ToString(), compress.ToString());
            }
        yield return new TestCaseData(new HybridAttentionDecodeSpecialization(60, 40, 2, CompressKind.Linear, CudaActivation.Float16))
            .SetArgDisplayNames("d60-dv40", "Float16", "Linear");
    }

    public static IEnumerable<TestCaseData> CachePrefillCases()
    {
        var n = 0;
        foreach (var op in Enum.GetValues<CachePrefillOperator>())
            foreach (var dim in new[] { 64, 128 })
                foreach (var activation in Activations)
                {
                    // Hybrid: each activation type meets both compress kinds across the two head dims.
                    var compress = (n + (dim == 128 ? 1 : 0)) % 2 == 0 ? CompressKind.Linear : CompressKind.Mean;
                    n++;
                    yield return new TestCaseData(new CachePrefillSpecialization(op, dim, dim, 1 + n % 2 * 3, activation, compress))
                        .SetArgDisplayNames(op.ToString(), $"d{dim}", activation.ToString(), op == CachePrefillOperator.Hybrid ? compress.ToString() : "-");
                }
        yield return new TestCaseData(new CachePrefillSpecialization(CachePrefillOperator.Hybrid, 60, 40, 5, CudaActivation.Float16, CompressKind.Linear))
            .SetArgDisplayNames("Hybrid", "d60-dv40", "Float16", "Linear");
        // compress=hedgehog in every activation type; the last at the shared-memory bound (group 8 x m 256 = 2048).
        foreach (var (activation, dim, group, m) in new[] { (CudaActivation.Float32, 64, 1, 16), (CudaActivation.Float16, 128, 4, 4), (CudaActivation.BFloat16, 128, 8, 256) })
        {
            yield return new TestCaseData(new CachePrefillSpecialization(CachePrefillOperator.Hybrid, dim, dim, group, activation, CompressKind.Hedgehog, m))
                .SetArgDisplayNames("Hybrid", $"d{dim}-g{group}-m{m}", activation.ToString(), "Hedgehog");
        }
        yield return new TestCaseData(new CachePrefillSpecialization(CachePrefillOperator.Window, 256, 256, 4, CudaActivation.BFloat16))
            .SetArgDisplayNames("Window", "d256", "BFloat16", "-");
    }

    public static IEnumerable<TestCaseData> SummaryDecodeCases()
    {
        var kinds = Enum.GetValues<SummaryKind>();
        var n = 0;
        foreach (var dim in new[] { 64, 128 })
            foreach (var activation in Activations)
            {
                var kind = kinds[(n + (dim == 128 ? 1 : 0)) % kinds.Length];
                n++;
                var spec = new SummaryAttentionDecodeSpecialization(dim, dim, 1 + n % 2 * 3, kind, kind == SummaryKind.Ema ? 4 : 1, activation);
                yield return new TestCaseData(spec).SetArgDisplayNames($"d{dim}", activation.ToString(), kind.ToString());
            }
        yield return new TestCaseData(new SummaryAttentionDecodeSpecialization(60, 200, 3, SummaryKind.Ema, 16, CudaActivation.Float16))
            .SetArgDisplayNames("d60-dv200", "Float16", "Ema-16-slots");
    }

    [TestCaseSource(nameof(LinearDecodeCases))]
    public void LinearAttentionDecodeCompiles(LinearAttentionDecodeSpecialization spec)
    {
        var ptx = CompileClean(spec);
        Assert.That(StaticSharedBytes(ptx), Is.InRange(1, 48 * 1024), "static shared memory");
    }

    [TestCaseSource(nameof(LinearPrefillCases))]
    public void LinearAttentionPrefillCompiles(LinearAttentionPrefillSpecialization spec)
    {
        var ptx = CompileClean(spec);
        Assert.That(ptx, Does.Match(@"\.extern \.shared \.align 16 \.b8 \w+\[\];"), "dynamic shared memory");
        if (spec.Activation == CudaActivation.Float32)
        {
            Assert.That(ptx, Does.Not.Contain("mma.sync"), "float32 activations take the FMA path");
        }
        else
        {
            var type = spec.Activation == CudaActivation.Float16 ? "f16" : "bf16";
            Assert.That(ptx, Does.Contain($"mma.sync.aligned.m16n8k16.row.col.f32.{type}.{type}.f32"), "tensor-core path");
        }
    }

    [TestCaseSource(nameof(WindowDecodeCases))]
    public void WindowAttentionDecodeCompiles(WindowAttentionDecodeSpecialization spec)
    {
        var ptx = CompileClean(spec);
        Assert.That(StaticSharedBytes(ptx), Is.InRange(1, 48 * 1024), "static shared memory");
    }

    [TestCaseSource(nameof(SegmentDecodeCases))]
    public void SegmentAttentionDecodeCompiles(SegmentAttentionDecodeSpecialization spec)
    {
        var ptx = CompileClean(spec);
        Assert.That(StaticSharedBytes(ptx), Is.InRange(1, 48 * 1024), "static shared memory");
    }

    [TestCaseSource(nameof(HybridDecodeCases))]
    public void HybridAttentionDecodeCompiles(HybridAttentionDecodeSpecialization spec)
    {
        var ptx = CompileClean(spec);
        Assert.That(StaticSharedBytes(ptx), Is.InRange(1, 2 * 48 * 1024), "static shared memory (two kernels)");
    }

    [TestCaseSource(nameof(CachePrefillCases))]
    public void CachePrefillCompiles(CachePrefillSpecialization spec)
    {
        var ptx = CompileClean(spec);
        Assert.That(StaticSharedBytes(ptx), Is.InRange(1, 48 * 1024), "static shared memory (the attention kernel; the state kernels use none)");
    }

    [TestCaseSource(nameof(SummaryDecodeCases))]
    public void SummaryAttentionDecodeCompiles(SummaryAttentionDecodeSpecialization spec)
    {
        var ptx = CompileClean(spec);
        Assert.That(StaticSharedBytes(ptx), Is.InRange(1, 48 * 1024), "static shared memory");
    }

    [Test]
    public void NewestArchitectureIsTargetedForANewerGpu()
    {
        RequireNvrtc();
        var newest = Nvrtc.SupportedArchitectures.Max();
        var spec = new WindowAttentionDecodeSpecialization(128, 128, 4, CudaActivation.BFloat16);
        var compiled = new KernelCompiler(null).Compile(spec.Source, spec.Defines, computeCapability: 1000);
        Assert.That(compiled.Architecture, Is.EqualTo(newest));
        Assert.That(compiled.Ptx, Does.Contain($".target sm_{newest}"));
        Assert.That(compiled.Options, Does.Contain($"--gpu-architecture=compute_{newest}"));
    }

    [Test]
    public void SecondCompileOfASpecialisationHitsTheDiskCache()
    {
        RequireNvrtc();
        var folder = Path.Combine(_cacheRoot, "hit");
        var spec = new LinearAttentionDecodeSpecialization(64, 64, 2, UpdateRule.Gated, FeatureMap.Relu, true, CudaActivation.Float16);

        var first = new KernelCompiler(folder).Compile(spec.Source, spec.Defines);
        Assert.That(first.FromCache, Is.False);
        Assert.That(File.ReadAllText(first.CacheFile!), Is.EqualTo(first.Ptx));

        // A new compiler (as in a new process): the hit comes from the file, not from memory.
        var second = new KernelCompiler(folder).Compile(spec.Source, spec.Defines);
        Assert.That(second.FromCache, Is.True);
        Assert.That(second.CacheFile, Is.EqualTo(first.CacheFile));
        Assert.That(second.Ptx, Is.EqualTo(first.Ptx));

        // Any other define, or another target, is another key.
        var other = new LinearAttentionDecodeSpecialization(64, 64, 2, UpdateRule.Gated, FeatureMap.Relu, false, CudaActivation.Float16);
        var third = new KernelCompiler(folder).Compile(other.Source, other.Defines);
        Assert.That(third.FromCache, Is.False);
        Assert.That(third.CacheFile, Is.Not.EqualTo(first.CacheFile));
        var newest = Nvrtc.SupportedArchitectures.Max();
        if (newest > KernelCompiler.MinimumArchitecture)
        {
            var fourth = new KernelCompiler(folder).Compile(spec.Source, spec.Defines, computeCapability: newest);
            Assert.That(fourth.FromCache, Is.False);
            Assert.That(fourth.CacheFile, Is.Not.EqualTo(first.CacheFile));
        }
        Assert.That(Directory.GetFiles(folder, "*.tmp"), Is.Empty, "no temporary files left behind");
    }

    [Test]
    public void ACacheFileWithoutTheEntryPointsIsRecompiledAndReplaced()
    {
        RequireNvrtc();
        var folder = Path.Combine(_cacheRoot, "damaged");
        var spec = new WindowAttentionDecodeSpecialization(64, 64, 2, CudaActivation.Float32);
        var first = new KernelCompiler(folder).Compile(spec.Source, spec.Defines);
        File.WriteAllText(first.CacheFile!, first.Ptx[..(first.Ptx.Length / 10)]);

        var again = new KernelCompiler(folder).Compile(spec.Source, spec.Defines);
        Assert.That(again.FromCache, Is.False);
        Assert.That(again.Ptx, Is.EqualTo(first.Ptx));
        Assert.That(File.ReadAllText(again.CacheFile!), Is.EqualTo(first.Ptx));
    }

    [Test]
    public void ASyntaxErrorThrowsWithNvrtcsLogLine()
    {
        RequireNvrtc();
        var folder = Path.Combine(_cacheRoot, "broken");
        var broken = new KernelSource("broken_kernel.cu", "extern \"C\" __global__ void broken(float* x)\n{\n    x[0] = 1.0f\n}\n", ["broken"]);
        var error = Assert.Throws<NvrtcException>(() => new KernelCompiler(folder).Compile(broken, []));
        Assert.That(error!.Log, Does.Contain("broken_kernel.cu(4): error: expected a \";\""));
        Assert.That(error.Message, Does.Contain(error.Log));
        Assert.That(error.Message, Does.Contain("NVRTC_ERROR_COMPILATION"));
        Assert.That(Directory.Exists(folder) ? Directory.GetFiles(folder) : [], Is.Empty, "nothing cached for a failed compile");
    }

    [Test]
    public void AMissingDefineIsNamedInTheError()
    {
        RequireNvrtc();
        var spec = new LinearAttentionDecodeSpecialization(64, 64, 1, UpdateRule.Linear, FeatureMap.Identity, false, CudaActivation.Float32);
        var error = Assert.Throws<NvrtcException>(() =>
            new KernelCompiler(null).Compile(spec.Source, spec.Defines.Where(d => d.Name != "HEAD_DIM")));
        Assert.That(error!.Message, Does.Contain("linear_attention_decode needs HEAD_DIM"));
    }

    [Test]
    public void AHostLaunchFormulaThatDisagreesWithTheKernelDoesNotCompile()
    {
        RequireNvrtc();
        var prefill = new LinearAttentionPrefillSpecialization(128, 128, 2, FeatureMap.EluPlusOne, true, CudaActivation.Float16);
        var wrongBytes = prefill.Defines.Select(d =>
            d.Name == "EXPECTED_SHARED_BYTES" ? new KernelDefine(d.Name, prefill.DynamicSharedBytes + 16) : d);
        var error = Assert.Throws<NvrtcException>(() => new KernelCompiler(null).Compile(prefill.Source, wrongBytes));
        Assert.That(error!.Message, Does.Contain("SHARED_BYTES formula disagrees"));

        var decode = new LinearAttentionDecodeSpecialization(128, 128, 2, UpdateRule.Linear, FeatureMap.EluPlusOne, true, CudaActivation.Float16);
        var wrongThreads = decode.Defines.Select(d =>
            d.Name == "EXPECTED_THREADS" ? new KernelDefine(d.Name, decode.ThreadsPerBlock / 2) : d);
        error = Assert.Throws<NvrtcException>(() => new KernelCompiler(null).Compile(decode.Source, wrongThreads));
        Assert.That(error!.Message, Does.Contain("THREADS formula disagrees"));
    }

    private static string CompileClean(KernelSpecialization spec)
    {
        RequireNvrtc();
        var compiled = new KernelCompiler(null).Compile(spec.Source, spec.Defines);
        Assert.That(compiled.FromCache, Is.False);
        Assert.That(compiled.Log, Is.Empty, "NVRTC printed diagnostics (warnings count: the sources compile clean)");
        Assert.That(compiled.Architecture, Is.EqualTo(KernelCompiler.MinimumArchitecture));
        Assert.That(compiled.Ptx, Does.Contain($".target sm_{KernelCompiler.MinimumArchitecture}"));
        foreach (var entry in spec.Source.EntryPoints)
        {
            var match = Regex.Match(compiled.Ptx, $@"\.entry {entry}\([^)]*\)\s*\.maxntid (\d+), 1, 1");
            Assert.That(match.Success, Is.True, $"PTX has .entry {entry} with __launch_bounds__");
            Assert.That(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                Is.EqualTo(spec.ThreadsPerBlock), $"{entry}: block size of the launch contract");
        }
        // The source declares exactly these kernels, no more.
        Assert.That(EntryRegex().Matches(compiled.Ptx).Select(m => m.Groups[1].Value), Is.EquivalentTo(spec.Source.EntryPoints));
        return compiled.Ptx;
    }

    private static int StaticSharedBytes(string ptx) =>
        StaticSharedRegex().Matches(ptx).Sum(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));

    internal static void RequireNvrtc()
    {
        if (!Nvrtc.IsAvailable)
        {
            Assert.Ignore("NVRTC not installed: " + Nvrtc.UnavailableReason);
        }
    }

    [GeneratedRegex(@"\.entry (\w+)\(")]
    private static partial Regex EntryRegex();

    [GeneratedRegex(@"^\s*\.shared \.align \d+ \.b8 \S+\[(\d+)\];", RegexOptions.Multiline)]
    private static partial Regex StaticSharedRegex();
}
