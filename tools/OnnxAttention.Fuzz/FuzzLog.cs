using System.Globalization;

namespace OnnxAttention.Fuzz;

/// <summary>One result per line between a worker and the supervisor (and in a run's log): tab-separated fields.</summary>
public static class FuzzLog
{
    public static string Format(FuzzResult r) => string.Join('\t', "result", r.Case.ToString(CultureInfo.InvariantCulture), r.Outcome.ToString(),
        r.Milliseconds.ToString("F1", CultureInfo.InvariantCulture), Clean(r.Seed), Clean(r.Mutations), Clean(r.Detail));

    public static FuzzResult? Parse(string line)
    {
        var f = line.Split('\t');
        if (f.Length != 7 || f[0] != "result" || !Enum.TryParse<FuzzOutcome>(f[2], out var outcome)) return null;
        return new FuzzResult(long.Parse(f[1], CultureInfo.InvariantCulture), outcome, f[4], f[5], f[6], double.Parse(f[3], CultureInfo.InvariantCulture));
    }

    private static string Clean(string s) => s.Replace('\t', ' ').Replace('\n', ' ').Replace('\r', ' ');
}
