namespace OnnxAttention.Host.Generation;

/// <summary>
/// How the next token is chosen from the logits. Temperature 0 is greedy (argmax). Otherwise the logits are divided
/// by the temperature, then cut to the TopK most likely (0: no cut) and to the smallest set whose probability
/// reaches TopP (1: no cut), and sampled with a generator seeded by Seed, so a run can be repeated exactly.
/// </summary>
public sealed record SamplingOptions(float Temperature = 0f, int TopK = 0, float TopP = 1f, int Seed = 0)
{
    public static SamplingOptions Greedy { get; } = new();

    public void Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"temperature must be a finite number >= 0, got {Temperature}");
        if (TopK < 0) throw new ArgumentException($"top-k must be >= 0, got {TopK}");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}");
    }
}
