using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.SegmentAttention;

/// <summary>
/// <c>com.onnxattention.SegmentAttention</c>: segment-level recurrence in the style of Transformer-XL's memory
/// (no relative positions). The stream is cut into segments of <c>segment_length</c> tokens; a token attends with
/// causal softmax to every token of the previous segment (the cached memory) and to its own segment up to itself.
/// See docs/operators/SegmentAttention.md.
/// </summary>
public sealed class SegmentAttentionOperator : AttentionOperator
{
    public const string OpName = "SegmentAttention";

    public const int InputQuery = AttentionInputs.Query;
    public const int InputKey = AttentionInputs.Key;
    public const int InputValue = AttentionInputs.Value;
    public const int InputPastMemoryKey = AttentionInputs.FirstPast + SegmentAttentionContract.MemoryKey;
    public const int InputPastMemoryValue = AttentionInputs.FirstPast + SegmentAttentionContract.MemoryValue;
    public const int InputPastSegmentKey = AttentionInputs.FirstPast + SegmentAttentionContract.SegmentKey;
    public const int InputPastSegmentValue = AttentionInputs.FirstPast + SegmentAttentionContract.SegmentValue;
    public const int InputPastPosition = AttentionInputs.FirstPast + SegmentAttentionContract.Position;

    public const int OutputY = AttentionInputs.Output;
    public const int OutputPresentMemoryKey = AttentionInputs.FirstPresent + SegmentAttentionContract.MemoryKey;
    public const int OutputPresentMemoryValue = AttentionInputs.FirstPresent + SegmentAttentionContract.MemoryValue;
    public const int OutputPresentSegmentKey = AttentionInputs.FirstPresent + SegmentAttentionContract.SegmentKey;
    public const int OutputPresentSegmentValue = AttentionInputs.FirstPresent + SegmentAttentionContract.SegmentValue;
    public const int OutputPresentPosition = AttentionInputs.FirstPresent + SegmentAttentionContract.Position;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public SegmentAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => SegmentAttentionContract.Contract.Schema(t);

    protected override IKernel CreateAttentionKernel(in KernelInfo info) => new SegmentAttentionKernel(SegmentAttentionAttributes.Read(info));
}
