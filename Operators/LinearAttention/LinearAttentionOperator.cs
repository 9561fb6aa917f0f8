using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.LinearAttention;

/// <summary>
/// <c>com.onnxattention.LinearAttention</c>: causal linear attention with state variables
/// mu = sum phi(k)^T v and nu = sum phi(k); y = phi(q) mu / (phi(q) . nu + epsilon).
/// A sequence of length 1 is a decode step; a longer one is a prefill starting from the given state.
/// </summary>
public sealed class LinearAttentionOperator : CustomOperator
{
    public const string OpName = "LinearAttention";

    public const int InputQuery = 0;
    public const int InputKey = 1;
    public const int InputValue = 2;
    public const int InputPastState = 3;
    public const int InputPastNormalizer = 4;

    public const int OutputY = 0;
    public const int OutputPresentState = 1;
    public const int OutputPresentNormalizer = 2;

    /// <param name="activationType">Element type of query, key, value and output (float32 or float16); state is float32.</param>
    public LinearAttentionOperator(OrtElementType activationType = OrtElementType.Float)
    {
        if (!FloatIO.IsSupported(activationType))
        {
            throw new ArgumentOutOfRangeException(nameof(activationType), activationType, "float32 or float16");
        }
        ActivationType = activationType;
        Schema = BuildSchema(activationType);
    }

    public OrtElementType ActivationType { get; }

    public override OperatorSchema Schema { get; }

    private static OperatorSchema BuildSchema(OrtElementType t) => new(
        OpName,
        OperatorRegistry.Domain,
        Inputs:
        [
            new("query", t, Doc: "[batch, sequence, q_num_heads * head_dim]"),
            new("key", t, Doc: "[batch, sequence, kv_num_heads * head_dim]"),
            new("value", t, Doc: "[batch, sequence, kv_num_heads * v_head_dim]"),
            new("past_state", OrtElementType.Float, Optional: true, Doc: "mu, [batch, kv_num_heads, head_dim, v_head_dim]; zeros when absent"),
            new("past_normalizer", OrtElementType.Float, Optional: true, Doc: "nu, [batch, kv_num_heads, head_dim]; zeros when absent"),
        ],
        Outputs:
        [
            new("output", t, Doc: "[batch, sequence, q_num_heads * v_head_dim]"),
            new("present_state", OrtElementType.Float, Optional: true, Doc: "mu after the last token"),
            new("present_normalizer", OrtElementType.Float, Optional: true, Doc: "nu after the last token"),
        ],
        LinearAttentionAttributes.All,
        Doc: "Causal linear attention with a matrix state and a normaliser vector, grouped KV heads.");


    public override IKernel CreateKernel(in KernelInfo info) => new LinearAttentionKernel(LinearAttentionAttributes.Read(info));
}
