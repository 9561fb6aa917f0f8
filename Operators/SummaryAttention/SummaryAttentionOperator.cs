using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>
/// <c>com.onnxattention.SummaryAttention</c>: causal attention over a fixed-size memory of summary vectors.
/// At step i the query attends, with one softmax, over the summary slots (kbar_s, vbar_s) after token i was
/// absorbed and over the token's own (k_i, v_i). The summaries are running means, moving means over the last
/// <c>window</c> tokens, or bias-corrected EMAs. See docs/operators/SummaryAttention.md for the exact rules.
/// </summary>
public sealed class SummaryAttentionOperator : AttentionOperator
{
    public const string OpName = "SummaryAttention";

    public const int InputQuery = AttentionInputs.Query;
    public const int InputKey = AttentionInputs.Key;
    public const int InputValue = AttentionInputs.Value;
    public const int InputPastKeySummary = AttentionInputs.FirstPast + SummaryAttentionContract.KeySummary;
    public const int InputPastValueSummary = AttentionInputs.FirstPast + SummaryAttentionContract.ValueSummary;
    public const int InputPastCount = AttentionInputs.FirstPast + SummaryAttentionContract.Count;
    public const int InputPastKeyWindow = AttentionInputs.FirstPast + SummaryAttentionContract.KeyWindow;
    public const int InputPastValueWindow = AttentionInputs.FirstPast + SummaryAttentionContract.ValueWindow;

    public const int OutputY = AttentionInputs.Output;
    public const int OutputPresentKeySummary = AttentionInputs.FirstPresent + SummaryAttentionContract.KeySummary;
    public const int OutputPresentValueSummary = AttentionInputs.FirstPresent + SummaryAttentionContract.ValueSummary;
    public const int OutputPresentCount = AttentionInputs.FirstPresent + SummaryAttentionContract.Count;
    public const int OutputPresentKeyWindow = AttentionInputs.FirstPresent + SummaryAttentionContract.KeyWindow;
    public const int OutputPresentValueWindow = AttentionInputs.FirstPresent + SummaryAttentionContract.ValueWindow;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public SummaryAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => SummaryAttentionContract.Contract.Schema(t);

    protected override IKernel CreateAttentionKernel(in KernelInfo info) => new SummaryAttentionKernel(SummaryAttentionAttributes.Read(info));
}
