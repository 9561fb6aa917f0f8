namespace OnnxAttention.Host.Generation;

/// <summary>What a generation run may do: how many tokens, when to stop, how to sample.</summary>
public sealed record GeneratorParams(int MaxNewTokens, IReadOnlySet<int>? StopTokens = null, SamplingOptions? Sampling = null)
{
    public SamplingOptions SamplingOrGreedy => Sampling ?? SamplingOptions.Greedy;

    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"the number of new tokens must be >= 0, got {MaxNewTokens}");
        SamplingOrGreedy.Validate();
    }
}
