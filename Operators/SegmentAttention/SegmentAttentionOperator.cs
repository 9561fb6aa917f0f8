using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
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

    public const int InputQuery = 0;
    public const int InputKey = 1;
    public const int InputValue = 2;
    public const int InputPastMemoryKey = 3;
    public const int InputPastMemoryValue = 4;
    public const int InputPastSegmentKey = 5;
    public const int InputPastSegmentValue = 6;
    public const int InputPastPosition = 7;

    public const int OutputY = 0;
    public const int OutputPresentMemoryKey = 1;
    public const int OutputPresentMemoryValue = 2;
    public const int OutputPresentSegmentKey = 3;
    public const int OutputPresentSegmentValue = 4;
    public const int OutputPresentPosition = 5;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public SegmentAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => new(
        OpName,
        OperatorRegistry.Domain,
        Inputs:
        [
            .. QueryKeyValue(t),
            new("past_memory_key", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, segment_length, head_dim]: the previous segment's keys, position p in row p mod L"),
            new("past_memory_value", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, segment_length, v_head_dim]: the previous segment's values"),
            new("past_segment_key", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, segment_length, head_dim]: the current partial segment's keys, rows 0 .. past_position mod L - 1"),
            new("past_segment_value", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, segment_length, v_head_dim]: the current partial segment's values"),
            new("past_position", OrtElementType.Int64, Optional: true, Doc: "[batch]: tokens seen so far"),
        ],
        Outputs:
        [
            Output(t),
            new("present_memory_key", OrtElementType.Float, Optional: true, Doc: "past_memory_key after the last token"),
            new("present_memory_value", OrtElementType.Float, Optional: true, Doc: "past_memory_value after the last token"),
            new("present_segment_key", OrtElementType.Float, Optional: true, Doc: "past_segment_key after the last token"),
            new("present_segment_value", OrtElementType.Float, Optional: true, Doc: "past_segment_value after the last token"),
            new("present_position", OrtElementType.Int64, Optional: true, Doc: "past_position + sequence"),
        ],
        SegmentAttentionAttributes.All,
        Doc: "Softmax attention over the previous segment (cached memory) and the current segment up to the token.");

    public override IKernel CreateKernel(in KernelInfo info) => new SegmentAttentionKernel(SegmentAttentionAttributes.Read(info));
}
