using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>One input or output of an operator: its name (for messages and docs), element type, optionality, and how its
/// leading axes follow the batch (see <see cref="BatchLayout"/>).</summary>
public sealed record TensorSpec(string Name, OrtElementType ElementType, bool Optional = false, string Doc = "",
    BatchLayout Layout = BatchLayout.Whole);
