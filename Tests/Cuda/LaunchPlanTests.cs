using NUnit.Framework;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.SummaryAttention;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// The CUDA operators' launch plans, run on a recording launcher (no GPU, no driver): argument lists against the
/// kernel signatures parsed from the .cu files, launch geometry against the contracts worked by hand, the token
/// loop of the decode-only kernels, state chaining and in-place aliasing, and scratch freed.
/// </summary>
[TestFixture]
public class LaunchPlanTests
{
    private static readonly string[] NoAliasKernels = ["segment_attention_decode", "hybrid_attention_decode", "hybrid_attention_linear"];

    public static IEnumerable<TestCaseData> Matrix() =>
        LaunchScenarios.Matrix().Select(s => new TestCaseData(s.Launcher).SetArgDisplayNames(s.Name));

    [TestCaseSource(nameof(Matrix))]
    public void EveryLaunchPacksItsKernelsParametersInOrderWithTheirKinds(RecordingLauncher launcher)
    {
        Assert.That(launcher.Launches, Is.Not.Empty);
        foreach (var launch in launcher.Launches)
        {
            Assert.That(launch.Specialization.Source.EntryPoints, Does.Contain(launch.EntryPoint), launch.ToString());
            var parameters = KernelSignatures.Of(launch.EntryPoint);
            Assert.That(launch.Arguments.Select(a => (a.Name, a.Kind)), Is.EqualTo(parameters.Select(p => (p.Name, p.Kind))),
                $"{launch.EntryPoint}: packed arguments vs the .cu signature ({string.Join(", ", parameters.Select(p => p.Declaration))})");
            Assert.That(launch.Grid.X, Is.InRange(1, int.MaxValue), launch.ToString());
            Assert.That(launch.Grid.Y, Is.InRange(1, 65535), launch.ToString());
            Assert.That(launch.Threads, Is.InRange(32, 1024), launch.ToString());
            Assert.That(launch.Threads % 32, Is.Zero, launch.ToString());
        }
    }

    [TestCaseSource(nameof(Matrix))]
    public void KernelsThatForbidAliasingNeverReadWhatTheyWrite(RecordingLauncher launcher)
    {
        foreach (var (launch, pastName, past, present) in ForbiddenAliases(launcher))
        {
            Assert.That(past.PointerValue, Is.Not.EqualTo(present.PointerValue), $"{launch}: {pastName} aliases {present.Name}");
        }
    }

    [TestCaseSource(nameof(Matrix))]
    public void EveryScratchAllocationIsFreedOnceAfterTheLastLaunch(RecordingLauncher launcher)
    {
        var allocated = launcher.Log.OfType<RecordingLauncher.Allocated>().Select(a => a.Pointer).ToList();
        var freed = launcher.Log.OfType<RecordingLauncher.Freed>().Select(f => f.Pointer).ToList();
        Assert.That(freed, Is.EquivalentTo(allocated));
        var lastLaunch = launcher.Log.FindLastIndex(o => o is RecordingLauncher.Launched);
        var firstFree = launcher.Log.FindIndex(o => o is RecordingLauncher.Freed);
        if (firstFree >= 0)
        {
            Assert.That(firstFree, Is.GreaterThan(lastLaunch));
        }
    }

    /// <summary>
    /// The two checks above pass on a scenario with nothing to check (no past/present pair that must not alias, no
    /// scratch): over the whole matrix, every kernel that forbids aliasing must have had pairs checked, and scratch
    /// must have been allocated and freed, so neither can pass on nothing.
    /// </summary>
    [Test]
    public void TheAliasingAndScratchChecksHaveSomethingToCheck()
    {
        var scenarios = LaunchScenarios.Matrix().ToList();
        var pairs = scenarios.SelectMany(s => ForbiddenAliases(s.Launcher)).ToList();
        foreach (var kernel in NoAliasKernels)
        {
            Assert.That(pairs.Count(p => p.Launch.EntryPoint == kernel), Is.GreaterThan(0), $"{kernel}: past/present pairs checked");
        }
        Assert.That(pairs.Select(p => p.PastName).Distinct(), Does.Contain("past_position").And.Contain("past_count"), "position and count pairs checked");
        var withScratch = scenarios.Count(s => s.Launcher.Log.OfType<RecordingLauncher.Allocated>().Any());
        Assert.That(withScratch, Is.GreaterThan(0), $"scenarios that allocate scratch, of {scenarios.Count}");
    }

    /// <summary>Every past/present pair of the launches that must not share a buffer (both wired).</summary>
    private static IEnumerable<(KernelLaunch Launch, string PastName, KernelArgument Past, KernelArgument Present)>
        ForbiddenAliases(RecordingLauncher launcher)
    {
        foreach (var launch in launcher.Launches)
        {
            var byName = launch.Arguments.ToDictionary(a => a.Name);
            foreach (var present in launch.Arguments.Where(a => a.Name.StartsWith("present_", StringComparison.Ordinal)))
            {
                var pastName = "past_" + present.Name["present_".Length..];
                if (!byName.TryGetValue(pastName, out var past) || present.PointerValue == 0)
                {
                    continue;
                }
                // Positions and counts are written by one block while the others still read them: never aliased.
                var mayAlias = !NoAliasKernels.Contains(launch.EntryPoint) && !pastName.EndsWith("position", StringComparison.Ordinal)
                    && pastName != "past_count" && !(pastName == "past_normalizer" && launch.Grid.Y > 1);
                if (!mayAlias)
                {
                    yield return (launch, pastName, past, present);
                }
            }
        }
    }

    [Test]
    public void LinearDecodeGeometryFollowsTheContract()
    {
        // d_k = d_v = 128: BLOCK_COLS 128, 4 column warps, ROW_SPLITS = min(4, max(1, 16 / 4)) = 4: 512 threads.
        var launch = LaunchScenarios.Linear(UpdateRule.Linear, 2, 1, 128, 128, qHeads: 6, kvHeads: 3).Launcher.Launches.Single();
        Assert.That((launch.EntryPoint, launch.Grid, launch.Threads, launch.DynamicSharedBytes),
            Is.EqualTo(("linear_attention_decode", (6, 1), 512, 0)));
        // d_k = 64, d_v = 256: BLOCK_COLS 128 -> 2 column blocks; ROW_SPLITS = min(2, 4) = 2: 256 threads.
        launch = LaunchScenarios.Linear(UpdateRule.Delta, 3, 1, 64, 256).Launcher.Launches.Single();
        Assert.That((launch.Grid, launch.Threads), Is.EqualTo(((6, 2), 256)));
        var scalars = launch.Arguments.Where(a => a.Kind != KernelArgumentKind.Pointer).ToDictionary(a => a.Name);
        Assert.That(scalars["seq_len"].IntValue, Is.EqualTo(1));
        Assert.That(scalars["kv_heads"].IntValue, Is.EqualTo(2));
        Assert.That(scalars["scale"].FloatValue, Is.EqualTo(0.125f), "scale 0 resolves to 1/sqrt(64)");
        Assert.That(scalars["gamma"].FloatValue, Is.EqualTo(0.9f));
        Assert.That(scalars["epsilon"].FloatValue, Is.EqualTo(1e-6f));
    }

    [Test]
    public void APromptWithTheLinearRuleUsesThePrefillKernelWithItsDynamicSharedMemory()
    {
        var launch = LaunchScenarios.Linear(UpdateRule.Linear, 2, 100, 128, 128, act: CudaActivation.Float16).Launcher.Launches.Single();
        // 133 136 bytes for d_k = d_v = 128, float16 (docs/cuda-kernels.md); BLOCK_COLS 64 -> 2 column blocks.
        Assert.That((launch.EntryPoint, launch.Grid, launch.Threads, launch.DynamicSharedBytes),
            Is.EqualTo(("linear_attention_prefill", (4, 2), 128, 133136)));
        Assert.That(launch.Arguments.Single(a => a.Name == "seq_len").IntValue, Is.EqualTo(100));
    }

    [Test]
    public void ThePrefillFallsBackToTheRecurrenceWhenItsSharedMemoryDoesNotFitTheDevice()
    {
        var launch = LaunchScenarios.Linear(UpdateRule.Linear, 2, 100, 128, 128, act: CudaActivation.Float16, maxShared: 100 * 1024)
            .Launcher.Launches.Single();
        Assert.That((launch.EntryPoint, launch.DynamicSharedBytes), Is.EqualTo(("linear_attention_decode", 0)));
    }

    [TestCase(UpdateRule.Gated)]
    [TestCase(UpdateRule.Delta)]
    [TestCase(UpdateRule.GatedDelta)]
    public void RulesWithoutAPrefillKernelRunThePromptThroughTheRecurrenceInOneLaunch(UpdateRule rule)
    {
        var launch = LaunchScenarios.Linear(rule, 2, 100, 64, 64).Launcher.Launches.Single();
        Assert.That(launch.EntryPoint, Is.EqualTo("linear_attention_decode"));
        Assert.That(launch.Arguments.Single(a => a.Name == "seq_len").IntValue, Is.EqualTo(100));
        var defines = launch.Specialization.Defines.ToDictionary(d => d.Name, d => d.Value);
        Assert.That(defines["RULE"], Is.EqualTo(((int)rule).ToString()));
    }

    [Test]
    public void TheGateAndBetaLayoutsReachTheDefines()
    {
        var launch = LaunchScenarios.Linear(UpdateRule.GatedDelta, 2, 3, 32, 32, gate: GateLayout.PerHead, beta: BetaLayout.Shared)
            .Launcher.Launches.Single();
        var defines = launch.Specialization.Defines.ToDictionary(d => d.Name, d => d.Value);
        Assert.That((defines["GATE_PER_KEY"], defines["BETA_PER_HEAD"]), Is.EqualTo(("0", "0")));
    }

    [Test]
    public void AnAliasedNormaliserIsCopiedAsideOnlyWithSeveralColumnBlocks()
    {
        // d_v = 256: two column blocks, so block y = 1 could read nu after block y = 0 wrote it.
        var (split, d) = LaunchScenarios.Linear(UpdateRule.Linear, 1, 1, 64, 256, inPlace: true);
        var copy = split.Log.OfType<RecordingLauncher.Copied>().Single();
        Assert.That(copy.Source, Is.EqualTo(d.PastNormalizer));
        var args = split.Launches.Single().Pointers();
        Assert.That((args["past_normalizer"], args["present_normalizer"]), Is.EqualTo((copy.Destination, d.PresentNormalizer)));
        Assert.That((args["past_state"], args["present_state"]), Is.EqualTo((d.PastState, d.PastState)), "the state is updated in place");

        var (single, _) = LaunchScenarios.Linear(UpdateRule.Linear, 1, 1, 64, 64, inPlace: true);
        Assert.That(single.Log.OfType<RecordingLauncher.Copied>(), Is.Empty);
    }

    [Test]
    public void LeftOutStateOutputsAreNullForTheLinearKernels()
    {
        var (l, _) = LaunchScenarios.Linear(UpdateRule.Linear, 2, 40, 60, 40, past: false, stateOutputs: false);
        var args = l.Launches.Single().Pointers();
        Assert.That(new[] { args["past_state"], args["past_normalizer"], args["present_state"], args["present_normalizer"] }, Is.All.EqualTo((nint)0));
        Assert.That(l.Log.OfType<RecordingLauncher.Allocated>(), Is.Empty);
    }

    [Test]
    public void AWindowDecodeStepSplitsLongCachesWhenTheBatchCannotFillTheGpu()
    {
        // rows = 4 + 1020 = 1024 -> at most 16 tiles; batch 1 x 2 KV heads = 2 blocks, 264 wanted: 16 splits.
        var (l, d) = LaunchScenarios.Window(1, 1, 64, 64, 1020, 4, qHeads: 8, kvHeads: 2);
        var launches = l.Launches.ToArray();
        Assert.That(launches.Select(x => (x.EntryPoint, x.Grid, x.Threads)),
            Is.EqualTo(new[] { ("window_attention_decode", (2, 16), 128), ("window_attention_combine", (8, 1), 128) }));
        var decode = launches[0].Arguments.ToDictionary(a => a.Name);
        Assert.That((long)decode["output"].PointerValue, Is.Zero, "with splits the decode kernel writes partials only");
        var allocations = l.Log.OfType<RecordingLauncher.Allocated>().ToArray();
        Assert.That(allocations.Select(a => a.Bytes), Is.EqualTo(new long[] { 1 * 8 * 16 * 64 * 4, 8 * 16 * 4, 8 * 16 * 4 }),
            "partial_acc [B*Hq, splits, d_v], partial_max and partial_sum [B*Hq, splits]");
        var combine = launches[1].Arguments.ToDictionary(a => a.Name);
        Assert.That(combine["output"].PointerValue, Is.EqualTo(d.Output));
        Assert.That(combine["splits"].IntValue, Is.EqualTo(16));
        Assert.That(combine["partial_acc"].PointerValue, Is.EqualTo(decode["partial_acc"].PointerValue));
    }

    [Test]
    public void ABatchThatFillsTheGpuRunsOneSplit()
    {
        var (l, d) = LaunchScenarios.Window(64, 1, 64, 64, 1020, 4, qHeads: 8, kvHeads: 8);
        var launch = l.Launches.Single();
        Assert.That((launch.Grid, launch.Arguments.Single(a => a.Name == "output").PointerValue), Is.EqualTo(((512, 1), d.Output)));
    }

    [Test]
    public void AWindowPromptIsOneAttentionLaunchAndOneStoreLaunchOverTheWholeTensors()
    {
        // B = 2, T = 3, H_q = 4, H_kv = 2, d_k = 8, d_v = 6, float16, W = 10, S = 2 -> 12 rows.
        var (l, d) = LaunchScenarios.Window(2, 3, 8, 6, 10, 2);
        var launches = l.Launches.ToArray();
        Assert.That(launches.Select(x => (x.EntryPoint, x.Grid, x.Threads, x.DynamicSharedBytes)), Is.EqualTo(new[]
        {
            ("window_attention_prefill", (2 * 2 * 3, 1), 128, 0), // a block per (batch row, KV head, token)
            ("window_attention_store", (2 * 2, 1), 128, 0),       // ceil(12 rows / 16) row blocks
        }));
        var attention = launches[0].Arguments.ToDictionary(a => a.Name);
        Assert.That((attention["query"].PointerValue, attention["key"].PointerValue, attention["output"].PointerValue),
            Is.EqualTo((d.Query, d.Key, d.Output)), "no per-token offsets: the kernel indexes [batch, T, ...] itself");
        Assert.That((attention["seq_len"].IntValue, attention["window"].IntValue, attention["sinks"].IntValue), Is.EqualTo((3, 10, 2)));
        Assert.That(attention["past_key_cache"].PointerValue, Is.EqualTo(d.PastKeyCache));
        var store = launches[1].Pointers();
        Assert.That((store["past_key_cache"], store["present_key_cache"], store["present_value_cache"]),
            Is.EqualTo((d.PastKeyCache, d.PresentKeyCache, d.PresentValueCache)));
        Assert.That((store["past_position"], store["present_position"]), Is.EqualTo((d.PastPosition, d.PresentPosition)));
        Assert.That(l.Log.OfType<RecordingLauncher.Allocated>(), Is.Empty, "no scratch");
    }

    [TestCase(2, 65, 2)]
    [TestCase(1, 4096, 2)]
    [TestCase(3, 1000, 8)]
    public void EveryOperatorRunsAPromptInAConstantNumberOfLaunches(int batch, int tokens, int kvHeads)
    {
        Assert.That(LaunchScenarios.Window(batch, tokens, 64, 64, 300, 4, qHeads: 8, kvHeads: kvHeads).Launcher.Launches.Count(), Is.EqualTo(2));
        Assert.That(LaunchScenarios.Segment(batch, tokens, 64, 64, 100, qHeads: 8, kvHeads: kvHeads).Launcher.Launches.Count(), Is.EqualTo(2));
        foreach (var compress in HybridAttentionCudaOperator.Compressions)
        {
            var launches = LaunchScenarios.Hybrid(compress, batch, tokens, 64, 64, 128, qHeads: 8, kvHeads: kvHeads).Launcher.Launches.ToArray();
            if (compress == CompressKind.Hedgehog)
            {
                Assert.That(launches[0].EntryPoint, Is.EqualTo("hybrid_attention_features"), "hedgehog: the evicted keys' features first");
                Assert.That(launches[0].Grid, Is.EqualTo((batch * kvHeads, Math.Min(tokens, 65535))), "a block per eviction (at most T)");
                launches = launches[1..];
            }
            Assert.That(launches.Select(x => x.EntryPoint),
                Is.EqualTo(new[] { "hybrid_attention_prefill", "hybrid_attention_compress", "hybrid_attention_store" }));
            Assert.That(launches[0].Grid, Is.EqualTo((batch * kvHeads * tokens, 1)));
            Assert.That(launches[1].Grid, Is.EqualTo((batch * kvHeads, compress switch
            {
                CompressKind.Linear => 64,
                CompressKind.Hedgehog => 2 * LaunchScenarios.HedgehogProjections,
                _ => 1,
            })), "compress: a block per key row (linear) or feature (hedgehog), or per 128 of the d_k + d_v sums (mean)");
            Assert.That(launches[2].Grid, Is.EqualTo((batch * kvHeads, 8)), "ceil(128 ring rows / 16)");
        }
    }

    [Test]
    public void AGridTooLargeForOneDimensionIsRefusedWithTheReason()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => CachePrefillSpecialization.AttentionGrid(64, 64, 1 << 20));
        Assert.That(e!.Message, Does.Contain("2^31 - 1"));
        Assert.That(CachePrefillSpecialization.StoreGrid(1, 1, 1 << 24).Y, Is.EqualTo(65535), "blocks stride over the rows beyond");
    }

    [Test]
    public void ASharedPositionHasStrideZeroAndIsNeverOffset()
    {
        var (l, d) = LaunchScenarios.Window(3, 1, 32, 16, 40, 0, sharedPosition: true);
        var args = l.Launches.Single().Arguments.ToDictionary(a => a.Name);
        Assert.That((args["position_stride"].IntValue, args["past_position"].PointerValue, args["present_position"].PointerValue),
            Is.EqualTo((0, d.PastPosition, d.PresentPosition)));
    }

    [Test]
    public void AWindowCacheBoundAsPastAndPresentIsUpdatedInPlaceButItsPositionIsCopiedAside()
    {
        var (l, d) = LaunchScenarios.Window(2, 1, 32, 16, 40, 0, inPlace: true);
        var copy = l.Log.OfType<RecordingLauncher.Copied>().Single();
        Assert.That((copy.Source, copy.Bytes), Is.EqualTo((d.PastPosition, 2 * 8L)));
        var args = l.Launches.Single().Pointers();
        Assert.That((args["past_key_cache"], args["present_key_cache"]), Is.EqualTo((d.PastKeyCache, d.PastKeyCache)));
        Assert.That((args["past_position"], args["present_position"]), Is.EqualTo((copy.Destination, d.PresentPosition)));
    }

    [Test]
    public void LeftOutWindowCachesBecomeScratchBecauseTheKernelWritesThem()
    {
        var (l, _) = LaunchScenarios.Window(2, 1, 32, 16, 40, 2, cacheOutputs: false);
        var args = l.Launches.Single().Pointers();
        var scratch = l.Log.OfType<RecordingLauncher.Allocated>().ToDictionary(a => a.Pointer, a => a.Bytes);
        Assert.That(scratch[args["present_key_cache"]], Is.EqualTo(2L * 2 * 42 * 32 * 4));
        Assert.That(scratch[args["present_value_cache"]], Is.EqualTo(2L * 2 * 42 * 16 * 4));
    }

    [TestCase(1)]
    [TestCase(5)]
    public void SegmentStatesBoundInPlaceAreUpdatedInPlaceWithOnlyThePositionCopiedAside(int tokens)
    {
        var (l, d) = LaunchScenarios.Segment(2, tokens, 16, 16, 8, inPlace: true);
        var copy = l.Log.OfType<RecordingLauncher.Copied>().Single();
        Assert.That((copy.Source, copy.Bytes), Is.EqualTo((d.PastPosition, 2 * 8L)), "8 bytes a row, not the state");
        Assert.That(l.Launches.Select(x => x.EntryPoint), Is.EqualTo(new[] { "segment_attention_prefill", "segment_attention_store" }));
        var store = l.Launches.ElementAt(1).Pointers();
        Assert.That((store["past_memory_key"], store["present_memory_key"]), Is.EqualTo((d.PastMemoryKey, d.PastMemoryKey)));
        Assert.That((store["past_segment_value"], store["present_segment_value"]), Is.EqualTo((d.PastSegmentValue, d.PastSegmentValue)));
        Assert.That((store["past_position"], store["present_position"]), Is.EqualTo((copy.Destination, d.PastPosition)));
        Assert.That(l.Launches.First().Pointers()["past_position"], Is.EqualTo(copy.Destination));
        Assert.That(l.Log.FindIndex(o => o is RecordingLauncher.Copied), Is.LessThan(l.Log.FindIndex(o => o is RecordingLauncher.Launched)));
    }

    [Test]
    public void HybridStatesBoundInPlaceAreUpdatedInPlaceWithOnlyThePositionCopiedAside()
    {
        foreach (var compress in HybridAttentionCudaOperator.Compressions)
        {
            var (l, d) = LaunchScenarios.Hybrid(compress, 2, 1, 64, 40, 16, inPlace: true);
            Assert.That(l.Log.OfType<RecordingLauncher.Copied>().Single().Source, Is.EqualTo(d.PastPosition));
            var compressArgs = l.Launches.Single(x => x.EntryPoint == "hybrid_attention_compress").Pointers();
            Assert.That((compressArgs["past_compressed_value"], compressArgs["present_compressed_value"]),
                Is.EqualTo((d.PastCompressedValue, d.PastCompressedValue)));
            var store = l.Launches.Single(x => x.EntryPoint == "hybrid_attention_store").Pointers();
            Assert.That((store["past_key"], store["present_key"]), Is.EqualTo((d.PastKey, d.PastKey)));
        }
    }

    [TestCase(1, false, Description = "a decode step with separate buffers: no split-K decode kernel for hedgehog")]
    [TestCase(1, true)]
    [TestCase(70, false)]
    public void AHedgehogCallComputesTheEvictedKeysFeaturesOnceIntoScratchForAttentionAndCompress(int tokens, bool inPlace)
    {
        const int batch = 2, kvHeads = 2, m = LaunchScenarios.HedgehogProjections;
        var (l, d) = LaunchScenarios.Hybrid(CompressKind.Hedgehog, batch, tokens, 64, 40, 16, kvHeads: kvHeads, inPlace: inPlace);
        Assert.That(l.Launches.Select(x => x.EntryPoint), Is.EqualTo(new[]
            { "hybrid_attention_features", "hybrid_attention_prefill", "hybrid_attention_compress", "hybrid_attention_store" }));
        var (features, attention, compress) = (l.Launches.First().Pointers(), l.Launches.ElementAt(1).Pointers(), l.Launches.ElementAt(2).Pointers());
        var scratch = l.Log.OfType<RecordingLauncher.Allocated>().Single(a => a.Pointer == features["key_features"]);
        Assert.That(scratch.Bytes, Is.EqualTo((long)batch * kvHeads * tokens * 2 * m * 4), "[batch * kv_heads, T, 2m] float32");
        Assert.That((attention["key_features"], compress["key_features"]), Is.EqualTo((scratch.Pointer, scratch.Pointer)));
        Assert.That((features["feature_key_weight"], features["feature_key_bias"]), Is.EqualTo((d.FeatureKeyWeight, d.FeatureKeyBias)));
        Assert.That((attention["feature_query_weight"], attention["feature_query_bias"], attention["mix"]),
            Is.EqualTo((d.FeatureQueryWeight, d.FeatureQueryBias, d.Mix)));
        Assert.That(l.Log.FindLastIndex(o => o is RecordingLauncher.Freed f && f.Pointer == scratch.Pointer),
            Is.GreaterThan(l.Log.FindLastIndex(o => o is RecordingLauncher.Launched)), "freed after the last launch");
        Assert.That(compress["present_compressed_value"], Is.EqualTo(inPlace ? d.PastCompressedValue : d.PresentCompressedValue));
    }

    [Test]
    public void OtherCompressKindsPassNoHedgehogInputsAndAllocateNoFeatures()
    {
        foreach (var compress in new[] { CompressKind.Linear, CompressKind.Mean })
        {
            var (l, _) = LaunchScenarios.Hybrid(compress, 2, 5, 64, 40, 16);
            var attention = l.Launches.Single(x => x.EntryPoint == "hybrid_attention_prefill").Pointers();
            Assert.That(new[] { attention["key_features"], attention["feature_query_weight"], attention["feature_query_bias"], attention["mix"] },
                Is.All.EqualTo((nint)0), $"{compress}");
            Assert.That(l.Launches.Single(x => x.EntryPoint == "hybrid_attention_compress").Pointers()["key_features"], Is.EqualTo((nint)0), $"{compress}");
            Assert.That(l.Launches.Any(x => x.EntryPoint == "hybrid_attention_features"), Is.False, $"{compress}");
        }
    }

    [Test]
    public void ASegmentDecodeStepWithSeparateBuffersKeepsTheSplitKDecodeKernel()
    {
        var (l, d) = LaunchScenarios.Segment(1, 1, 16, 16, 100, multiprocessors: 132);
        Assert.That(l.Launches.Select(x => (x.EntryPoint, x.Grid)),
            Is.EqualTo(new[] { ("segment_attention_decode", (2, 4)), ("segment_attention_combine", (4, 1)) }), "200 rows: 4 tiles, 4 splits");
        var decode = l.Launches.First().Pointers();
        Assert.That((decode["past_segment_key"], decode["present_segment_key"]), Is.EqualTo((d.PastSegmentKey, d.PresentSegmentKey)));
        Assert.That(l.Log.OfType<RecordingLauncher.Copied>(), Is.Empty);
    }

    [Test]
    public void HybridLinearRunsTheWindowThenTheLinearPartThroughAFloat32WindowOutput()
    {
        var (l, d) = LaunchScenarios.Hybrid(CompressKind.Linear, 2, 1, 64, 40, 16);
        var launches = l.Launches.ToArray();
        Assert.That(launches.Select(x => (x.EntryPoint, x.Grid)),
            Is.EqualTo(new[] { ("hybrid_attention_decode", (4, 1)), ("hybrid_attention_linear", (4, 2)) }), "ceil(40 / 32) = 2 column blocks");
        var decode = launches[0].Pointers();
        var linear = launches[1].Pointers();
        Assert.That((long)decode["output"], Is.Zero);
        Assert.That((long)decode["window_output"], Is.Not.Zero);
        Assert.That(linear["window_output"], Is.EqualTo(decode["window_output"]));
        Assert.That(l.Log.OfType<RecordingLauncher.Allocated>().Single(a => a.Pointer == decode["window_output"]).Bytes, Is.EqualTo(2L * 4 * 40 * 4));
        Assert.That(linear["output"], Is.EqualTo(d.Output));
        Assert.That((linear["past_key"], linear["past_position"]), Is.EqualTo((d.PastKey, d.PastPosition)), "the evicted row comes from the past ring");
        Assert.That((decode["present_compressed_key"], decode["present_compressed_value"], decode["past_compressed_value"]), Is.EqualTo(((nint)0, (nint)0, (nint)0)));
        Assert.That((linear["present_compressed_key"], linear["present_compressed_value"]), Is.EqualTo((d.PresentCompressedKey, d.PresentCompressedValue)));
    }

    [Test]
    public void HybridMeanWritesTheOutputAndTheCompressedSumsFromTheDecodeKernel()
    {
        var (l, d) = LaunchScenarios.Hybrid(CompressKind.Mean, 2, 1, 64, 40, 16);
        var launch = l.Launches.Single();
        var args = launch.Pointers();
        Assert.That((args["output"], args["window_output"]), Is.EqualTo((d.Output, (nint)0)));
        Assert.That((args["present_compressed_key"], args["present_compressed_value"]), Is.EqualTo((d.PresentCompressedKey, d.PresentCompressedValue)));
        var defines = launch.Specialization.Defines.ToDictionary(x => x.Name, x => x.Value);
        Assert.That(defines["COMPRESS"], Is.EqualTo("1"));
    }

    [TestCase(SummaryKind.Cumulative)]
    [TestCase(SummaryKind.Moving)]
    [TestCase(SummaryKind.Ema)]
    public void SummaryRunsEveryTokenInOneLaunchAndUpdatesInPlaceExceptTheCount(SummaryKind kind)
    {
        var (l, d) = LaunchScenarios.Summary(kind, 3, 7, 32, 48, inPlace: true);
        var launch = l.Launches.Single();
        var args = launch.Arguments.ToDictionary(a => a.Name);
        Assert.That((launch.Grid, launch.Threads), Is.EqualTo(((6, 1), 128)));
        Assert.That(args["seq_len"].IntValue, Is.EqualTo(7));
        Assert.That(args["present_key_summary"].PointerValue, Is.EqualTo(d.PastKeySummary));
        Assert.That(args["past_key_summary"].PointerValue, Is.EqualTo(d.PastKeySummary));
        Assert.That(args["past_count"].PointerValue, Is.Not.EqualTo(args["present_count"].PointerValue));
        Assert.That(args["window"].IntValue, Is.EqualTo(kind == SummaryKind.Moving ? 5 : 0));
        Assert.That(args["present_key_window"].PointerValue != 0, Is.EqualTo(kind == SummaryKind.Moving));
        var defines = launch.Specialization.Defines.ToDictionary(x => x.Name, x => x.Value);
        Assert.That((defines["SUMMARY_KIND"], defines["SLOTS"]), Is.EqualTo((((int)kind).ToString(), kind == SummaryKind.Ema ? "3" : "1")));
    }

    [Test]
    public void AnEmptySequenceLaunchesNothingAndCarriesThePastStateOver()
    {
        var (l, d) = LaunchScenarios.Segment(2, 0, 16, 16, 8);
        Assert.That(l.Launches, Is.Empty);
        var copies = l.Log.OfType<RecordingLauncher.Copied>().Select(c => (c.Destination, c.Source)).ToArray();
        Assert.That(copies, Is.EquivalentTo(new[]
        {
            (d.PresentMemoryKey, d.PastMemoryKey), (d.PresentMemoryValue, d.PastMemoryValue), (d.PresentSegmentKey, d.PastSegmentKey),
            (d.PresentSegmentValue, d.PastSegmentValue), (d.PresentPosition, d.PastPosition),
        }));
        var (fresh, e) = LaunchScenarios.Segment(2, 0, 16, 16, 8, past: false);
        Assert.That(fresh.Log.OfType<RecordingLauncher.Zeroed>().Select(z => z.Destination),
            Is.EquivalentTo(new[] { e.PresentMemoryKey, e.PresentMemoryValue, e.PresentSegmentKey, e.PresentSegmentValue, e.PresentPosition }));
    }

    [Test]
    public void AnEmptyHedgehogSequenceCopiesItsStateOfTwoMFeaturesOver()
    {
        const int batch = 2, kvHeads = 2, window = 8, dk = 16, dv = 12, f = 2 * LaunchScenarios.HedgehogProjections;
        var (l, d) = LaunchScenarios.Hybrid(CompressKind.Hedgehog, batch, 0, dk, dv, window, kvHeads: kvHeads);
        Assert.That(l.Launches, Is.Empty);
        var copies = l.Log.OfType<RecordingLauncher.Copied>().ToDictionary(c => c.Source, c => (c.Destination, c.Bytes));
        Assert.That(copies[d.PastCompressedKey], Is.EqualTo((d.PresentCompressedKey, (long)batch * kvHeads * f * 4)), "nu: 2m features, not d_k");
        Assert.That(copies[d.PastCompressedValue], Is.EqualTo((d.PresentCompressedValue, (long)batch * kvHeads * f * dv * 4)));
        Assert.That(copies[d.PastKey], Is.EqualTo((d.PresentKey, (long)batch * kvHeads * window * dk * 4)));
        Assert.That(LaunchScenarios.Hybrid(CompressKind.Hedgehog, 0, 3, dk, dv, window).Launcher.Log, Is.Empty, "an empty batch");
    }

    [Test]
    public void AnEmptyBatchLaunchesNothing()
    {
        Assert.That(LaunchScenarios.Linear(UpdateRule.Linear, 0, 5, 16, 16).Launcher.Log, Is.Empty);
        Assert.That(LaunchScenarios.Window(0, 1, 16, 16, 8, 0).Launcher.Log, Is.Empty);
        Assert.That(LaunchScenarios.Segment(0, 3, 16, 16, 8).Launcher.Log, Is.Empty);
        Assert.That(LaunchScenarios.Hybrid(CompressKind.Linear, 0, 1, 16, 16, 8).Launcher.Log, Is.Empty);
        Assert.That(LaunchScenarios.Summary(SummaryKind.Ema, 0, 2, 16, 16).Launcher.Log, Is.Empty);
    }

    [Test]
    public void SplitCountsFollowTheRule()
    {
        Assert.That(CacheDecodeSplits.Choose(64, 1, 132), Is.EqualTo(1), "one tile");
        Assert.That(CacheDecodeSplits.Choose(65, 1, 132), Is.EqualTo(2), "two tiles at most");
        Assert.That(CacheDecodeSplits.Choose(100_000, 8, 132), Is.EqualTo(33), "ceil(264 / 8)");
        Assert.That(CacheDecodeSplits.Choose(100_000, 264, 132), Is.EqualTo(1), "the batch fills the GPU");
    }
}
