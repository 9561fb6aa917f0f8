using System.Diagnostics;

namespace OnnxAttention.Cli.Bench;

/// <summary>Median wall time of an action after warm-up; the machine is shared, so medians, not means.</summary>
public static class Timing
{
    public static double MedianMicroseconds(Action action, int warmup = 10, int minRuns = 20, double budgetSeconds = 0.4)
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
        return samples[samples.Count / 2];
    }
}
