namespace OnnxAttention.Tests.Support;

/// <summary>
/// What every cache operator's seeded case offers the shared fixtures: its sizes, its float32 inputs
/// (query [batch, seq, q_heads * dk], key [batch, seq, kv_heads * dk], value [batch, seq, kv_heads * dv]),
/// an all-zero start state and, when <see cref="History"/> &gt; 0, a past state built by the reference.
/// </summary>
public interface IAttentionCase<out TState>
{
    int Batch { get; }
    int Seq { get; }
    int QHeads { get; }
    int KvHeads { get; }
    int Dk { get; }
    int Dv { get; }
    int History { get; }
    float[] Query { get; }
    float[] Key { get; }
    float[] Value { get; }
    TState ZeroState { get; }
    TState Past { get; }
}
