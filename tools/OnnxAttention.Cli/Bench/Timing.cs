using System.Diagnostics;

namespace OnnxAttention.Cli.Bench;

/// <summary>Median wall time of an action after warm-up; the machine is shared, so medians, not means.</summary>
public static class Timing
{
    public static double MedianMicroseconds(Action action, int warmup = 10, int minRuns = 20, double budgetSeconds = 0.4) =>
        QuantileMicroseconds(action, 0.5, warmup, minRuns, budgetSeconds);

    /// <summary>
    /// The given quantile of the per-call times: a low one (0.2) estimates the uncontended time when a neighbour
    /// takes cores away for whole scheduler slices, which lands on a long call far more often than on a short one.
    /// </summary>
    public static double QuantileMicroseconds(Action action, double quantile, int warmup = 10, int minRuns = 20, double budgetSeconds = 0.4)
    {
        for (var i = 0; i < warmup; i++) action();
        var samples = new List<double>();
        var total = Stopwatch.StartNew();
        while (samples.Count < minRuns || (total.Elapsed.TotalSeconds < budgetSeconds && samples.Count < 100_000))
        {
            var t = Stopwatch.GetTimestamp();
            action();
            samples.Add(Stopwatch.GetElapsedTime(t).TotalMicroseconds);
        }
        samples.Sort();
        return samples[(int)(quantile * (samples.Count - 1))];
    }
}
