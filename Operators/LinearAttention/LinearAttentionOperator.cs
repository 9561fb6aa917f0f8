using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
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

    public const int InputQuery = 0;
    public const int InputKey = 1;
    public const int InputValue = 2;
    public const int InputPastState = 3;
    public const int InputPastNormalizer = 4;
    public const int InputDecay = 5;
    public const int InputBeta = 6;

    public const int OutputY = 0;
    public const int OutputPresentState = 1;
    public const int OutputPresentNormalizer = 2;

    /// <param name="activationType">Element type of query, key, value and output (float32, float16 or bfloat16); state is float32.</param>
    public LinearAttentionOperator(OrtElementType activationType = OrtElementType.Float) : base(activationType)
    {
    }

    protected override OperatorSchema BuildSchema(OrtElementType t) => new(
        OpName,
        OperatorRegistry.Domain,
        Inputs:
        [
            .. QueryKeyValue(t),
            new("past_state", OrtElementType.Float, Optional: true, Doc: "mu, [batch, kv_num_heads, head_dim, v_head_dim]; zeros when absent"),
            new("past_normalizer", OrtElementType.Float, Optional: true, Doc: "nu, [batch, kv_num_heads, head_dim]; zeros when absent"),
            new("decay", t, Optional: true,
                Doc: "log-space gate g (multiplier exp(g)), [batch, sequence, kv_num_heads * head_dim] or [batch, sequence, kv_num_heads]; update_rule gated and gated_delta only"),
            new("beta", t, Optional: true,
                Doc: "write strength, used as given, [batch, sequence, kv_num_heads] or [batch, sequence, 1]; update_rule delta and gated_delta only"),
        ],
        Outputs:
        [
            Output(t),
            new("present_state", OrtElementType.Float, Optional: true, Doc: "S after the last token"),
            new("present_normalizer", OrtElementType.Float, Optional: true, Doc: "nu after the last token"),
        ],
        LinearAttentionAttributes.All,
        Doc: "Causal linear attention with a matrix state and a normaliser vector, grouped KV heads, linear/gated/delta/gated_delta updates.");

    public override IKernel CreateKernel(in KernelInfo info) => new LinearAttentionKernel(LinearAttentionAttributes.Read(info));
}
