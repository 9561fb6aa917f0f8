using ScottPlot;

namespace OnnxAttention.Cli.Reporting;

/// <summary>Writes simple line charts (one series per name) to PNG.</summary>
public static class LineChart
{
    public sealed record Series(string Name, double[] X, double[] Y);

    public static void Save(string path, string title, string xLabel, string yLabel, IEnumerable<Series> series, bool logX = false, bool logY = false)
    {
        var plot = new Plot();
        plot.Title(title);
        plot.XLabel(xLabel + (logX ? " (log10)" : ""));
        plot.YLabel(yLabel + (logY ? " (log10)" : ""));
        foreach (var s in series)
        {
            var xs = logX ? s.X.Select(Math.Log10).ToArray() : s.X;
            var ys = logY ? s.Y.Select(v => Math.Log10(Math.Max(v, 1e-12))).ToArray() : s.Y;
            var line = plot.Add.Scatter(xs, ys);
            line.LegendText = s.Name;
            line.MarkerSize = 6;
        }
        plot.ShowLegend(Alignment.UpperLeft);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        plot.SavePng(path, 900, 560);
    }
}
