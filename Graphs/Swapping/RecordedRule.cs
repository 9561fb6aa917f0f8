namespace OnnxAttention.Graphs.Swapping;

/// <summary>
/// The rule an already swapped model records in its metadata, kept as spelled: a calibrated model's plan may name
/// fitted rules (whose weights live in that model) that <see cref="AttentionRule.Parse"/> refuses, and a model that
/// is run as it is needs its rule only to name it.
/// </summary>
public sealed record RecordedRule(string Recorded) : AttentionRule
{
    public override string Spelling => Recorded;

    internal override IAttentionReplacement CreateReplacement() =>
        throw new InvalidOperationException($"'{Recorded}' is the rule a swapped model records; the model is run as it is, not swapped again");
}
