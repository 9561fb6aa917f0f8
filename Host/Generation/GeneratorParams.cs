namespace OnnxAttention.Host.Generation;

/// <summary>What a generation run may do: how many tokens, when to stop, how to sample.</summary>
/// <param name="StateInPlace">
/// Keep each fixed-size state tensor in one buffer bound as both past and present, so a step updates it where it lies
/// (see <see cref="SwappedDecoder.InPlaceStates"/>); false: two buffers per tensor that swap roles each step, which
/// costs a copy of the whole state per step.
/// </param>
/// <param name="PadMixedLengths">
/// Prefill prompts of different lengths in one padded batch even where each row could be prefilled alone (a model
/// with fixed-size state and positions per row): one call per piece instead of one per row and piece. Needs a model
/// that reads its attention mask; the rows get the same tokens either way.
/// </param>
public sealed record GeneratorParams(int MaxNewTokens, IReadOnlySet<int>? StopTokens = null, SamplingOptions? Sampling = null, bool StateInPlace = true,
    bool PadMixedLengths = false)
{
    public SamplingOptions SamplingOrGreedy => Sampling ?? SamplingOptions.Greedy;

    public void Validate()
    {
        if (MaxNewTokens < 0) throw new ArgumentException($"the number of new tokens must be >= 0, got {MaxNewTokens}");
        SamplingOrGreedy.Validate();
    }
}
