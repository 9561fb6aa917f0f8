namespace OnnxAttention.Cli.Bench;

/// <summary>
/// Times several contenders for the same work in interleaved rounds (A, B, C, A, B, C, ...), so a neighbour's load on
/// a shared machine hits them alike; compares them by the median over rounds of each round's time ratio.
/// </summary>
public static class SideBySide
{
    /// <summary>One way of doing the work: a bound model, and what to switch before timing it (a kernel choice).</summary>
    public sealed record Contender(string Name, BoundModel Model, Action? Select = null, Action? Deselect = null);

    /// <summary>Per contender, its time (µs) in each round (that round's quantile of its calls' times).</summary>
    public sealed record Result(IReadOnlyList<string> Names, double[][] Rounds)
    {
        public double MedianMicroseconds(int contender) => Median(Rounds[contender]);

        /// <summary>Median over rounds of time(baseline) / time(contender): above 1, the contender is faster.</summary>
        public double Speedup(int contender, int baseline) =>
            Median(Rounds[contender].Select((t, r) => Rounds[baseline][r] / t).ToArray());
    }

    public static Result Run(IReadOnlyList<Contender> contenders, int rounds, double budgetSeconds, double quantile = 0.5)
    {
        var times = contenders.Select(_ => new double[rounds]).ToArray();
        for (var r = 0; r < rounds; r++)
        {
            for (var c = 0; c < contenders.Count; c++)
            {
                var contender = contenders[c];
                contender.Select?.Invoke();
                try
                {
                    times[c][r] = Timing.QuantileMicroseconds(contender.Model.Run, quantile, warmup: r == 0 ? 5 : 2, minRuns: 7, budgetSeconds: budgetSeconds);
                }
                finally
                {
                    contender.Deselect?.Invoke();
                }
            }
        }
        return new Result(contenders.Select(c => c.Name).ToList(), times);
    }

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        var n = sorted.Length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }
}
