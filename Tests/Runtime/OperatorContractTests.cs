using NUnit.Framework;
using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.HybridAttention;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Operators.SummaryAttention;
using OnnxAttention.Operators.WindowAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Runtime;

// OperatorContractFixture's checks, once per operator, on settings that change the declared state shapes.

[TestFixture]
public class LinearAttentionContractTests : OperatorContractFixture<LinearAttentionAttributes>
{
    protected override OperatorContract<LinearAttentionAttributes> Contract => LinearAttentionContract.Contract;

    protected override IEnumerable<(LinearAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (LinearAttentionAttributes.Validate(4, 2, FeatureMap.EluPlusOne, 1, 1e-6f, 1f), 4, 2),
        (LinearAttentionAttributes.Validate(3, 3, FeatureMap.Relu, 0, 1e-6f, 0f), 3, 3),
    ];
}

[TestFixture]
public class WindowAttentionContractTests : OperatorContractFixture<WindowAttentionAttributes>
{
    protected override OperatorContract<WindowAttentionAttributes> Contract => WindowAttentionContract.Contract;

    protected override IEnumerable<(WindowAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (WindowAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), 4, 0, 0f), 4, 2),
        (WindowAttentionAttributes.Validate(HeadAttributes.Validate(2, 1, 0f), 2, 3, 0f), 2, 1),
    ];
}

[TestFixture]
public class HybridAttentionContractTests : OperatorContractFixture<HybridAttentionAttributes>
{
    protected override OperatorContract<HybridAttentionAttributes> Contract => HybridAttentionContract.Contract;

    protected override IEnumerable<(HybridAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (HybridAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), 2, CompressKind.Linear, 1e-6f), 4, 2),
        (HybridAttentionAttributes.Validate(HeadAttributes.Validate(2, 2, 0f), 3, CompressKind.Mean, 1e-6f), 2, 2),
    ];
}

[TestFixture]
public class SegmentAttentionContractTests : OperatorContractFixture<SegmentAttentionAttributes>
{
    protected override OperatorContract<SegmentAttentionAttributes> Contract => SegmentAttentionContract.Contract;

    protected override IEnumerable<(SegmentAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (SegmentAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), 2), 4, 2),
        (SegmentAttentionAttributes.Validate(HeadAttributes.Validate(2, 1, 0f), 5), 2, 1),
    ];
}

[TestFixture]
public class SummaryAttentionContractTests : OperatorContractFixture<SummaryAttentionAttributes>
{
    protected override OperatorContract<SummaryAttentionAttributes> Contract => SummaryAttentionContract.Contract;

    protected override IEnumerable<(SummaryAttentionAttributes Attributes, int QueryHeads, int KvHeads)> Settings =>
    [
        (SummaryAttentionAttributes.Validate(HeadAttributes.Validate(4, 2, 0f), SummaryKind.Cumulative, 0, 0.9f, 1), 4, 2),
        (SummaryAttentionAttributes.Validate(HeadAttributes.Validate(2, 1, 0f), SummaryKind.Moving, 2, 0.9f, 1), 2, 1),
        (SummaryAttentionAttributes.Validate(HeadAttributes.Validate(2, 2, 0f), SummaryKind.Ema, 0, 0.5f, 3), 2, 2),
    ];
}
