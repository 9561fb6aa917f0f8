namespace OnnxAttention.Operators.SummaryAttention;

/// <summary>How the memory's summary vectors of keys and values are kept.</summary>
public enum SummaryKind
{
    /// <summary>Running mean of every key and value so far (state: sums and the token count).</summary>
    Cumulative,
    /// <summary>Mean of the last <c>window</c> keys and values (state: ring buffer of them, their sums, the count).</summary>
    Moving,
    /// <summary>Bias-corrected exponential moving average, one per slot (state: the uncorrected averages, the count).</summary>
    Ema,
}

public static class SummaryKinds
{
    /// <summary>Attribute spellings, as written in a model's <c>summary</c> attribute.</summary>
    public static IReadOnlyDictionary<string, SummaryKind> ByName { get; } = new Dictionary<string, SummaryKind>
    {
        ["cumulative"] = SummaryKind.Cumulative,
        ["moving"] = SummaryKind.Moving,
        ["ema"] = SummaryKind.Ema,
    };

    public static string NameOf(SummaryKind kind) => ByName.First(kv => kv.Value == kind).Key;
}
