namespace OnnxAttention.Operators.Runtime;

/// <summary>An operator definition: its schema and how to build a kernel for one node from its attributes.</summary>
public abstract class CustomOperator
{
    public abstract OperatorSchema Schema { get; }

    /// <summary>Reads and validates the node's attributes; throwing here makes session creation fail with the message.</summary>
    public abstract IKernel CreateKernel(in KernelInfo info);
}
