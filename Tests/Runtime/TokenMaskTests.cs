using NUnit.Framework;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.HybridAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Runtime;

// TokenMaskFixture's checks, once per operator, on settings whose memories are shorter than the padded rows
// (windows, segments and moving summaries wrap or close inside the 9 tokens).

[TestFixture]
public class LinearAttentionTokenMaskTests : LinearAttentionTokenMaskCases;

/// <summary>LinearAttention's settings and reference for the token_mask checks (also run on its CUDA variant: Tests/Cuda).</summary>
public abstract class LinearAttentionTokenMaskCases : TokenMaskFixture<LinearAttentionAttributes>
{
    protected override OperatorContract<LinearAttentionAttributes> Contract => LinearAttentionContract.Contract;

    protected override IEnumerable<(LinearAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (LinearAttentionAttributes.Validate(4, 2, FeatureMap.EluPlusOne, 1, 1e-6f, 1f), 4, 2),
        (LinearAttentionAttributes.Validate(3, 3, FeatureMap.Relu, 0, 1e-6f, 0f), 3, 3),
        (LinearAttentionAttributes.Validate(4, 2, FeatureMap.EluPlusOne, 1, 1e-6f, 1f, UpdateRule.Gated, 1f), 4, 2),
        (LinearAttentionAttributes.Validate(2, 2, FeatureMap.Identity, 0, 1e-6f, 1f, UpdateRule.GatedDelta, 1f), 2, 2),
    ];

    // The gate (per head) and the write strength are per token: a pad's must not reach the state either.
    protected override IReadOnlyDictionary<string, (float Low, float High, int Width)> PerTokenInputs(LinearAttentionAttributes a, int kvHeads) =>
        new Dictionary<string, (float, float, int)>
        {
            ["decay"] = (-0.5f, -0.01f, Math.Max(1, kvHeads)),
            ["beta"] = (0.1f, 0.9f, Math.Max(1, kvHeads)),
        }.Where(e => e.Key == "decay" ? a.UpdateRule is UpdateRule.Gated or UpdateRule.GatedDelta : a.UpdateRule is UpdateRule.Delta or UpdateRule.GatedDelta)
        .ToDictionary(e => e.Key, e => e.Value);

    protected override double[] Reference(LinearAttentionAttributes a, int seq, int dk, int dv, float[] q, float[] k, float[] v,
        IReadOnlyDictionary<string, float[]> extra) =>
        LinearAttentionReference.Run(a, 1, seq, dk, dv, q, k, v, decay: extra.GetValueOrDefault("decay"), beta: extra.GetValueOrDefault("beta")).Output;
}

[TestFixture]
public class WindowAttentionTokenMaskTests : WindowAttentionTokenMaskCases;

/// <summary>WindowAttention's settings and reference for the token_mask checks (also run on its CUDA variant: Tests/Cuda).</summary>
public abstract class WindowAttentionTokenMaskCases : TokenMaskFixture<WindowAttentionAttributes>
{
    protected override OperatorContract<WindowAttentionAttributes> Contract => WindowAttentionContract.Contract;

    protected override IEnumerable<(WindowAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (WindowAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), 3, 0, 0f), 4, 2),
        (WindowAttentionAttributes.Validate(HeadAttributes.Validate(2, 1, 0f), 2, 2, 0f), 2, 1),
        (WindowAttentionAttributes.Validate(HeadAttributes.Validate(2, 2, 0f), 16, 0, 0f), 2, 2),
    ];

    protected override double[] Reference(WindowAttentionAttributes a, int seq, int dk, int dv, float[] q, float[] k, float[] v,
        IReadOnlyDictionary<string, float[]> extra) =>
        WindowAttentionReference.Run(a, 1, seq, dk, dv, q, k, v).Output;
}

[TestFixture]
public class HybridAttentionTokenMaskTests : HybridAttentionTokenMaskCases;

/// <summary>HybridAttention's settings and reference for the token_mask checks (also run on its CUDA variant: Tests/Cuda).</summary>
public abstract class HybridAttentionTokenMaskCases : TokenMaskFixture<HybridAttentionAttributes>
{
    protected override OperatorContract<HybridAttentionAttributes> Contract => HybridAttentionContract.Contract;

    protected override IEnumerable<(HybridAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (HybridAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), 2, CompressKind.Linear, 1e-6f), 4, 2),
        (HybridAttentionAttributes.Validate(HeadAttributes.Validate(2, 2, 0f), 3, CompressKind.Mean, 1e-6f), 2, 2),
        (HybridAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), 3, CompressKind.Hedgehog, 1e-6f, 2), 4, 2),
    ];

    /// <summary>compress=hedgehog's seeded maps (the hybrid tests' own), or null.</summary>
    private static HybridAttentionReference.HedgehogMaps? Maps(HybridAttentionAttributes a) => a.Compress != CompressKind.Hedgehog ? null
        : new HybridAttentionCase(1, 1, a.Heads.QueryHeads, a.Heads.KvHeads, KeyDim, ValueDim, a.Window, "hedgehog", Projections: a.Projections).Maps;

    protected override IReadOnlyList<(string Name, float[] Values, long[] Shape)> ConstantInputs(HybridAttentionAttributes a) =>
        Maps(a) is { } maps
            ? [.. HybridAttentionSession.MapTensors(new(a.Heads.QueryHeads, a.Window, a.Heads.KvHeads, "hedgehog", Projections: a.Projections), maps, KeyDim)]
            : [];

    protected override double[] Reference(HybridAttentionAttributes a, int seq, int dk, int dv, float[] q, float[] k, float[] v,
        IReadOnlyDictionary<string, float[]> extra) =>
        HybridAttentionReference.Run(a, 1, seq, dk, dv, q, k, v, maps: Maps(a)).Output;
}

[TestFixture]
public class SegmentAttentionTokenMaskTests : SegmentAttentionTokenMaskCases;

/// <summary>SegmentAttention's settings and reference for the token_mask checks (also run on its CUDA variant: Tests/Cuda).</summary>
public abstract class SegmentAttentionTokenMaskCases : TokenMaskFixture<SegmentAttentionAttributes>
{
    protected override OperatorContract<SegmentAttentionAttributes> Contract => SegmentAttentionContract.Contract;

    protected override IEnumerable<(SegmentAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (SegmentAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), 2), 4, 2),
        (SegmentAttentionAttributes.Validate(HeadAttributes.Validate(2, 1, 0f), 3), 2, 1),
    ];

    protected override double[] Reference(SegmentAttentionAttributes a, int seq, int dk, int dv, float[] q, float[] k, float[] v,
        IReadOnlyDictionary<string, float[]> extra) =>
        SegmentAttentionReference.Run(a, 1, seq, dk, dv, q, k, v).Output;
}

[TestFixture]
public class SummaryAttentionTokenMaskTests : SummaryAttentionTokenMaskCases;

/// <summary>SummaryAttention's settings and reference for the token_mask checks (also run on its CUDA variant: Tests/Cuda).</summary>
public abstract class SummaryAttentionTokenMaskCases : TokenMaskFixture<SummaryAttentionAttributes>
{
    protected override OperatorContract<SummaryAttentionAttributes> Contract => SummaryAttentionContract.Contract;

    protected override IEnumerable<(SummaryAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (SummaryAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), SummaryKind.Cumulative, 0, 0.9f, 1), 4, 2),
        (SummaryAttentionAttributes.Validate(HeadAttributes.Validate(2, 1, 0f), SummaryKind.Moving, 2, 0.9f, 1), 2, 1),
        (SummaryAttentionAttributes.Validate(HeadAttributes.Validate(2, 2, 0f), SummaryKind.Ema, 0, 0.5f, 3), 2, 2),
    ];

    protected override double[] Reference(SummaryAttentionAttributes a, int seq, int dk, int dv, float[] q, float[] k, float[] v,
        IReadOnlyDictionary<string, float[]> extra) =>
        SummaryAttentionReference.Run(a, 1, seq, dk, dv, q, k, v).Output;
}
