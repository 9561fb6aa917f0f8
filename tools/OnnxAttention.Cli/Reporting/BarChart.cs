using ScottPlot;

namespace OnnxAttention.Cli.Reporting;

/// <summary>Grouped bar charts with one labelled category per case, written to PNG.</summary>
public static class BarChart
{
    public sealed record Group(string Name, double[] Values);

    public static void Save(string path, string title, string yLabel, IReadOnlyList<string> categories, IReadOnlyList<Group> groups, double? referenceLine = null)
    {
        var plot = new Plot();
        plot.Title(title);
        plot.YLabel(yLabel);
        var palette = new ScottPlot.Palettes.Category10();
        var width = 0.8 / groups.Count;
        for (var g = 0; g < groups.Count; g++)
        {
            var bars = groups[g].Values.Select((v, i) => new Bar
            {
                Position = i + (g - (groups.Count - 1) / 2.0) * width,
                Value = v,
                Size = width * 0.95,
                FillColor = palette.GetColor(g),
            }).ToList();
            plot.Add.Bars(bars);
            plot.Legend.ManualItems.Add(new LegendItem { LabelText = groups[g].Name, FillColor = palette.GetColor(g) });
        }
        plot.Axes.Bottom.SetTicks(categories.Select((_, i) => (double)i).ToArray(), categories.ToArray());
        plot.Axes.Bottom.TickLabelStyle.Rotation = -30;
        plot.Axes.Bottom.TickLabelStyle.Alignment = Alignment.MiddleRight;
        plot.Axes.Margins(bottom: 0);
        if (referenceLine is { } y)
        {
            var line = plot.Add.HorizontalLine(y);
            line.LinePattern = LinePattern.Dashed;
        }
        plot.ShowLegend(Alignment.UpperRight);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null) Directory.CreateDirectory(directory);
        plot.SavePng(path, 1000, 600);
    }
}
