using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>One input or output of an operator: its name (for messages and docs), element type and optionality.</summary>
public sealed record TensorSpec(string Name, OrtElementType ElementType, bool Optional = false, string Doc = "");
