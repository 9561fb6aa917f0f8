namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// One node's compiled form. ORT calls <see cref="Compute"/> concurrently from every thread that runs the session,
/// so a kernel is immutable after construction and keeps per-run data on the stack or in the context.
/// </summary>
public interface IKernel
{
    void Compute(in KernelContext context);
}
