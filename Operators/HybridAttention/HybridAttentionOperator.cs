using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.HybridAttention;

/// <summary>
/// <c>com.onnxattention.HybridAttention</c>: exact causal softmax attention over a sliding window of the last
/// <c>window</c> tokens (a ring-buffer KV cache, position p in row p mod window) plus a fixed-size summary of
/// every token that has left the window: a normalised linear-attention state mixed in by a count gate, or
/// the mean evicted key and value as one extra softmax slot. See docs/operators/HybridAttention.md.
/// </summary>
public sealed class HybridAttentionOperator : AttentionOperator
{
    public const string OpName = "HybridAttention";

    public const int InputQuery = 0;
    public const int InputKey = 1;
    public const int InputValue = 2;
    public const int InputPastKey = 3;
    public const int InputPastValue = 4;
    public const int InputPastPosition = 5;
    public const int InputPastCompressedKey = 6;
    public const int InputPastCompressedValue = 7;

    public const int OutputY = 0;
    public const int OutputPresentKey = 1;
    public const int OutputPresentValue = 2;
    public const int OutputPresentPosition = 3;
    public const int OutputPresentCompressedKey = 4;
    public const int OutputPresentCompressedValue = 5;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public HybridAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => new(
        OpName,
        OperatorRegistry.Domain,
        Inputs:
        [
            .. QueryKeyValue(t),
            new("past_key", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, window, head_dim]: ring buffer, position p in row p mod window"),
            new("past_value", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, window, v_head_dim]: ring buffer, position p in row p mod window"),
            new("past_position", OrtElementType.Int64, Optional: true, Doc: "[batch]: tokens seen so far"),
            new("past_compressed_key", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, head_dim]: nu = sum phi(k) (linear) or the key sum (mean) over evicted tokens"),
            new("past_compressed_value", OrtElementType.Float, Optional: true,
                Doc: "[batch, kv_num_heads, head_dim, v_head_dim]: mu = sum phi(k)^T v (linear); [batch, kv_num_heads, 1, v_head_dim]: the value sum (mean)"),
        ],
        Outputs:
        [
            Output(t),
            new("present_key", OrtElementType.Float, Optional: true, Doc: "past_key after the last token"),
            new("present_value", OrtElementType.Float, Optional: true, Doc: "past_value after the last token"),
            new("present_position", OrtElementType.Int64, Optional: true, Doc: "past_position + sequence"),
            new("present_compressed_key", OrtElementType.Float, Optional: true, Doc: "past_compressed_key after the last token"),
            new("present_compressed_value", OrtElementType.Float, Optional: true, Doc: "past_compressed_value after the last token"),
        ],
        HybridAttentionAttributes.All,
        Doc: "Sliding-window softmax attention plus a compressed memory (linear attention or mean slot) of the evicted tokens.");

    public override IKernel CreateKernel(in KernelInfo info) => new HybridAttentionKernel(HybridAttentionAttributes.Read(info));
}
