using OnnxAttention.Graphs.Ir;

namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// A model's OnnxAttention metadata is missing or malformed. A <see cref="GraphException"/> (a model we refuse), so the
/// command line reports it as a one-line user error: the message names the metadata key and what is wrong with it.
/// </summary>
public sealed class ModelContractException(string message) : GraphException(message);
