using System.Text.RegularExpressions;
using NUnit.Framework;
using OnnxAttention.Operators.Cuda;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

/// <summary>The parts of the CUDA groundwork that need no NVRTC: the embedded catalog, option building, target choice and launch formulas.</summary>
[TestFixture]
public partial class KernelCatalogTests
{
    [Test]
    public void EverySourceIsEmbeddedWithItsEntryPointsAndIncludesOnlyEmbeddedHeaders()
    {
        Assert.That(KernelSources.Headers.Select(h => h.Key),
            Is.EqualTo(new[] { "onnx_attention_cache_decode.cuh", "onnx_attention_cache_prefill.cuh", "onnx_attention_common.cuh", "onnx_attention_feature_map.cuh" }));
        var headerNames = KernelSources.Headers.Select(h => h.Key).ToHashSet();
        var onDisk = Directory.GetFiles(Path.Combine(TestPaths.RepositoryRoot, "Operators", "Cuda", "Kernels"), "*.cu")
            .Select(Path.GetFileName);
        Assert.That(KernelSources.All.Select(s => s.FileName), Is.EquivalentTo(onDisk), "every .cu file is in the catalog");
        foreach (var source in KernelSources.All.Concat(KernelSources.Headers.Select(h => new KernelSource(h.Key, h.Value, []))))
        {
            Assert.That(source.Text, Does.Contain("NOT RUN ON A GPU YET"), source.FileName);
            foreach (var entry in source.EntryPoints)
            {
                Assert.That(source.Text, Does.Match($@"extern ""C"" __global__ void (__launch_bounds__\([^)]+\) )?{entry}\("), $"{source.FileName}: {entry}");
            }
            foreach (Match include in IncludeRegex().Matches(source.Text))
            {
                Assert.That(headerNames, Does.Contain(include.Groups[1].Value), $"{source.FileName} includes {include.Groups[1].Value}");
            }
        }
    }

    [Test]
    public void TheLaunchContractsAreDocumented()
    {
        var doc = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "docs", "cuda-kernels.md"));
        Assert.That(doc, Does.Contain("NOT RUN ON A GPU YET"));
        foreach (var source in KernelSources.All)
        {
            Assert.That(doc, Does.Contain(source.FileName));
            foreach (var entry in source.EntryPoints)
            {
                Assert.That(doc, Does.Contain($"`{entry}`"), entry);
            }
        }
    }

    [TestCase(null, 80)]
    [TestCase(80, 80)]
    [TestCase(89, 89)]
    [TestCase(88, 87)]
    [TestCase(90, 90)]
    [TestCase(120, 90)]
    public void TheNewestSupportedArchitectureNotNewerThanTheGpuIsTargeted(int? computeCapability, int expected)
    {
        int[] nvrtc118 = [35, 37, 50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90];
        Assert.That(KernelCompiler.SelectArchitecture(nvrtc118, computeCapability), Is.EqualTo(expected));
    }

    [Test]
    public void GpusOlderThanAmpereAndNvrtcWithoutAmpereAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => KernelCompiler.SelectArchitecture([75, 80, 86], 75));
        var error = Assert.Throws<NvrtcException>(() => KernelCompiler.SelectArchitecture([52, 60, 70, 75], 86));
        Assert.That(error!.Message, Does.Contain("none in [80, 86]"));
    }

    [Test]
    public void OptionsNameTheTargetAndSortTheDefinesAndRefuseDuplicates()
    {
        var options = KernelCompiler.Options(86, [new KernelDefine("VALUE_DIM", 64), new KernelDefine("ACT_TYPE", 1), new KernelDefine("HEAD_DIM", 128)]);
        Assert.That(options, Is.EqualTo(new[]
        {
            "--gpu-architecture=compute_86", "--std=c++17", "-DACT_TYPE=1", "-DHEAD_DIM=128", "-DVALUE_DIM=64",
        }));
        Assert.Throws<ArgumentException>(() => KernelCompiler.Options(80, [new KernelDefine("GROUP", 1), new KernelDefine("GROUP", 2)]));
        Assert.Throws<ArgumentException>(() => _ = new KernelDefine("1BAD", 1));
        Assert.Throws<ArgumentException>(() => _ = new KernelDefine("OK", "a b"));
    }

    [Test]
    public void LaunchShapesFollowTheDocumentedFormulas()
    {
        // Worked by hand from docs/cuda-kernels.md.
        var decode128 = new LinearAttentionDecodeSpecialization(128, 128, 4, UpdateRule.Linear, FeatureMap.EluPlusOne, true, CudaActivation.Float16);
        Assert.That(decode128.ThreadsPerBlock, Is.EqualTo(512)); // 4 column groups x 4 row splits x 32
        Assert.That(decode128.Grid(2, 8), Is.EqualTo((16, 1)));
        var decodeNarrow = new LinearAttentionDecodeSpecialization(128, 128, 4, UpdateRule.Linear, FeatureMap.EluPlusOne, true,
            CudaActivation.Float16, blockColumns: 32);
        Assert.That(decodeNarrow.ThreadsPerBlock, Is.EqualTo(128)); // 1 column group x 4 row splits
        Assert.That(decodeNarrow.Grid(1, 8), Is.EqualTo((8, 4)));
        var decode60 = new LinearAttentionDecodeSpecialization(60, 60, 1, UpdateRule.Delta, FeatureMap.L2Norm, false, CudaActivation.Float32);
        Assert.That(decode60.ThreadsPerBlock, Is.EqualTo(128)); // 2 column groups x 2 row splits

        // state 32768 + nu 512 + powers 272 + 5 x 256 + A 18432 + Y 18432 + phi(K) 34816 + phi(Q) 17408 + V^T 9216
        var prefill = new LinearAttentionPrefillSpecialization(128, 128, 1, FeatureMap.EluPlusOne, true, CudaActivation.Float16);
        Assert.That(prefill.DynamicSharedBytes, Is.EqualTo(133136));
        Assert.That(prefill.Grid(1, 4), Is.EqualTo((4, 2)));

        var window = new WindowAttentionDecodeSpecialization(128, 128, 4, CudaActivation.Float16);
        Assert.That(window.ThreadsPerBlock, Is.EqualTo(128));
        Assert.That(window.CombineGrid(2, 8), Is.EqualTo((64, 1)));
    }

    [Test]
    public void SpecialisationsRefuseShapesTheKernelsDoNotSupport()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new LinearAttentionDecodeSpecialization(
            300, 64, 1, UpdateRule.Linear, FeatureMap.Identity, false, CudaActivation.Float32));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new LinearAttentionDecodeSpecialization(
            64, 64, 1, UpdateRule.Linear, FeatureMap.Identity, false, CudaActivation.Float32, blockColumns: 48));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new LinearAttentionPrefillSpecialization(
            64, 64, 1, FeatureMap.Identity, false, CudaActivation.Float16, chunk: 48));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new SummaryAttentionDecodeSpecialization(
            64, 64, 1, SummaryKind.Cumulative, 2, CudaActivation.Float16));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new LinearAttentionPrefillSpecialization(
            64, 64, 1, FeatureMap.Identity, false, CudaActivation.Float16, blockColumns: 48));
    }

    [GeneratedRegex(@"#include ""([^""]+)""")]
    private static partial Regex IncludeRegex();
}
