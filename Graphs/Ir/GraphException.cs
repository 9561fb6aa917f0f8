namespace OnnxAttention.Graphs.Ir;

/// <summary>A model that cannot be read or edited as asked; the message says what and where.</summary>
public class GraphException(string message) : Exception(message);
