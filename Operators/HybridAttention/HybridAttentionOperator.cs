using OnnxAttention.Operators.Interop;
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

    public const int InputQuery = AttentionInputs.Query;
    public const int InputKey = AttentionInputs.Key;
    public const int InputValue = AttentionInputs.Value;
    public const int InputPastKey = AttentionInputs.FirstPast + HybridAttentionContract.Key;
    public const int InputPastValue = AttentionInputs.FirstPast + HybridAttentionContract.Value;
    public const int InputPastPosition = AttentionInputs.FirstPast + HybridAttentionContract.Position;
    public const int InputPastCompressedKey = AttentionInputs.FirstPast + HybridAttentionContract.CompressedKey;
    public const int InputPastCompressedValue = AttentionInputs.FirstPast + HybridAttentionContract.CompressedValue;
    public const int InputFeatureQueryWeight = AttentionInputs.FirstPast + HybridAttentionContract.FeatureQueryWeight;
    public const int InputFeatureQueryBias = AttentionInputs.FirstPast + HybridAttentionContract.FeatureQueryBias;
    public const int InputFeatureKeyWeight = AttentionInputs.FirstPast + HybridAttentionContract.FeatureKeyWeight;
    public const int InputFeatureKeyBias = AttentionInputs.FirstPast + HybridAttentionContract.FeatureKeyBias;
    public const int InputMix = AttentionInputs.FirstPast + HybridAttentionContract.Mix;

    public const int OutputY = AttentionInputs.Output;
    public const int OutputPresentKey = AttentionInputs.FirstPresent + HybridAttentionContract.Key;
    public const int OutputPresentValue = AttentionInputs.FirstPresent + HybridAttentionContract.Value;
    public const int OutputPresentPosition = AttentionInputs.FirstPresent + HybridAttentionContract.Position;
    public const int OutputPresentCompressedKey = AttentionInputs.FirstPresent + HybridAttentionContract.CompressedKey;
    public const int OutputPresentCompressedValue = AttentionInputs.FirstPresent + HybridAttentionContract.CompressedValue;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public HybridAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => HybridAttentionContract.Contract.Schema(t);

    protected override IKernel CreateAttentionKernel(in KernelInfo info) => new HybridAttentionKernel(HybridAttentionAttributes.Read(info));
}
