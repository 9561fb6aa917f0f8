using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>
/// <c>com.onnxattention.LinearAttention</c>: causal linear attention with a matrix state S (d_k x d_v) and a
/// normaliser nu (d_k) per KV head. Each token decays the state (fixed factor and/or log-space gate), writes phi(k)
/// with the chosen update rule (linear, gated, delta, gated_delta), then reads out
/// y = phi(q) S, divided by phi(q) . nu + epsilon when normalised. docs/operators/LinearAttention.md has the exact maths.
/// A sequence of length 1 is a decode step; a longer one is a prefill starting from the given state.
/// </summary>
public sealed class LinearAttentionOperator : AttentionOperator
{
    public const string OpName = "LinearAttention";

    public const int InputQuery = AttentionInputs.Query;
    public const int InputKey = AttentionInputs.Key;
    public const int InputValue = AttentionInputs.Value;
    public const int InputPastState = AttentionInputs.FirstPast + LinearAttentionContract.State;
    public const int InputPastNormalizer = AttentionInputs.FirstPast + LinearAttentionContract.Normalizer;
    public const int InputDecay = AttentionInputs.FirstPast + LinearAttentionContract.Decay;
    public const int InputBeta = AttentionInputs.FirstPast + LinearAttentionContract.Beta;

    public const int OutputY = AttentionInputs.Output;
    public const int OutputPresentState = AttentionInputs.FirstPresent + LinearAttentionContract.State;
    public const int OutputPresentNormalizer = AttentionInputs.FirstPresent + LinearAttentionContract.Normalizer;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public LinearAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => LinearAttentionContract.Contract.Schema(t);

    protected override IKernel CreateAttentionKernel(in KernelInfo info) => new LinearAttentionKernel(LinearAttentionAttributes.Read(info));
}
