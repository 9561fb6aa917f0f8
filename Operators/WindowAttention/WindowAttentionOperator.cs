using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.WindowAttention;

/// <summary>
/// <c>com.onnxattention.WindowAttention</c>: causal sliding-window softmax attention. The query at position p
/// attends to the keys at positions p - window &lt; j &lt;= p and to the first <c>sinks</c> positions of the stream
/// (attention sinks, each counted once). The state is a fixed-size KV cache: <c>sinks</c> rows that keep positions
/// 0 .. sinks-1, then a ring buffer of <c>window</c> rows holding position p in row sinks + (p mod window).
/// See docs/operators/WindowAttention.md.
/// </summary>
public sealed class WindowAttentionOperator : AttentionOperator
{
    public const string OpName = "WindowAttention";

    public const int InputQuery = 0;
    public const int InputKey = 1;
    public const int InputValue = 2;
    public const int InputPastKeyCache = 3;
    public const int InputPastValueCache = 4;
    public const int InputPastPosition = 5;

    public const int OutputY = 0;
    public const int OutputPresentKeyCache = 1;
    public const int OutputPresentValueCache = 2;
    public const int OutputPresentPosition = 3;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public WindowAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => new(
        OpName,
        OperatorRegistry.Domain,
        Inputs:
        [
            .. QueryKeyValue(t),
            new("past_key_cache", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, sinks + window, head_dim]: rows 0..sinks-1 hold positions 0..sinks-1, position p is also in row sinks + p mod window"),
            new("past_value_cache", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, sinks + window, v_head_dim]: the same for values"),
            new("past_position", OrtElementType.Int64, Optional: true, Doc: "[batch] or [1]: tokens seen so far"),
        ],
        Outputs:
        [
            Output(t),
            new("present_key_cache", OrtElementType.Float, Optional: true, Doc: "past_key_cache after the last token"),
            new("present_value_cache", OrtElementType.Float, Optional: true, Doc: "past_value_cache after the last token"),
            new("present_position", OrtElementType.Int64, Optional: true, Doc: "past_position + sequence, shaped as past_position ([batch] when absent)"),
        ],
        WindowAttentionAttributes.All,
        Doc: "Causal sliding-window softmax attention with attention sinks over a fixed-size ring-buffer KV cache.");

    public override IKernel CreateKernel(in KernelInfo info) => new WindowAttentionKernel(WindowAttentionAttributes.Read(info));
}
