using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// What every attention operator shares: one instance per activation element type (float32, float16 or bfloat16; state
/// tensors stay float32), and the query/key/value inputs and the output typed with it. ORT picks the instance by
/// the types of a node's inputs.
/// </summary>
public abstract class AttentionOperator : CustomOperator
{
    protected AttentionOperator(OrtElementType activationType)
    {
        if (!FloatIO.IsSupported(activationType))
        {
            throw new ArgumentOutOfRangeException(nameof(activationType), activationType, FloatIO.SupportedText);
        }
        ActivationType = activationType;
        Schema = BuildSchema(activationType);
    }

    /// <summary>Element type of query, key, value and output.</summary>
    public OrtElementType ActivationType { get; }

    public override OperatorSchema Schema { get; }

    /// <summary>The operator's kernel for one node, behind the one place that handles a token mask's padding.</summary>
    public sealed override IKernel CreateKernel(in KernelInfo info) => TokenMaskRows.Wrap(CreateAttentionKernel(info), Schema);

    /// <summary>Reads and validates the node's attributes into the operator's kernel.</summary>
    protected abstract IKernel CreateAttentionKernel(in KernelInfo info);

    /// <summary>Called once from the constructor: must depend on <paramref name="activation"/> only (the operator's contract's schema).</summary>
    protected abstract OperatorSchema BuildSchema(OrtElementType activation);
}
