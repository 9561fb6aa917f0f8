namespace OnnxAttention.Tests.Support;

/// <summary>One call of a cache operator's test session: y as float32, the present state, every output by name in its own element type.</summary>
public interface IStateOutputs<out TState>
{
    float[] Y { get; }
    TState? Present { get; }
    IReadOnlyDictionary<string, TypedTensor> All { get; }
}
