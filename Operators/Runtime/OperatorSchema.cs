namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Everything ORT is told about an operator before any node uses it. One schema per element-type binding:
/// ORT picks among same-named ops by the types of a node's inputs.
/// </summary>
public sealed record OperatorSchema(
    string Name,
    string Domain,
    IReadOnlyList<TensorSpec> Inputs,
    IReadOnlyList<TensorSpec> Outputs,
    IReadOnlyList<AttributeSpec> Attributes,
    string? ExecutionProvider = null,
    string Doc = "")
{
    /// <summary>ORT's name for the CPU execution provider; a custom op reports it as NULL.</summary>
    public const string CpuExecutionProvider = "CPUExecutionProvider";

    public bool RunsOnCpu => ExecutionProvider is null or CpuExecutionProvider;
}
