using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OnnxAttention.Cli.Reporting;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Diagnostics;
using OnnxAttention.Host.Generation;
using Spectre.Console;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention bench-memory</c>: generate a long sequence with a state-based rule and with softmax attention
/// (a growing KV cache), sampling resident memory along the way; print a table at 1k/10k/100k tokens and plot it.
/// </summary>
public static class BenchMemoryCommand
{
    private sealed record Point(int Tokens, double ResidentMb, double PeakMb, double TokensPerSecond);

    public static Command Create()
    {
        var rule = new Option<string>("--attention") { Description = "the state-based rule to measure: " + AttentionRule.Known, DefaultValueFactory = _ => "linear-elu" };
        var tokens = new Option<int>("--tokens") { Description = "tokens generated with the state-based rule", DefaultValueFactory = _ => 100_000 };
        var softmaxTokens = new Option<int>("--softmax-tokens") { Description = "tokens generated with softmax + KV cache (its cost grows with the context)", DefaultValueFactory = _ => 10_000 };
        var model = new Option<FileInfo?>("--model") { Description = "llama2.c .bin or exported .onnx; default: the built-in tiny Llama" };
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for bench-memory.csv and bench-memory.png", DefaultValueFactory = _ => new DirectoryInfo("artifacts/bench") };
        var command = new Command("bench-memory", "Peak memory while generating: a constant-memory rule next to softmax with a growing KV cache.")
        {
            rule, tokens, softmaxTokens, model, output,
        };
        command.SetAction(parse =>
        {
            try
            {
                var outDir = parse.GetValue(output)!;
                outDir.Create();
                var file = parse.GetValue(model);
                var runs = new List<(string Name, List<Point> Points)>();
                AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                    .Start(ctx =>
                    {
                        foreach (var (spelling, count) in new[] { (parse.GetValue(rule)!, parse.GetValue(tokens)), ("softmax", parse.GetValue(softmaxTokens)) })
                        {
                            var attention = AttentionRule.Parse(spelling);
                            var task = ctx.AddTask($"{attention.Spelling}: {count:N0} tokens", maxValue: count);
                            runs.Add((attention.Spelling, Measure(file, attention, count, n => task.Value = n)));
                        }
                    });
                Print(runs);
                var csv = Path.Combine(outDir.FullName, "bench-memory.csv");
                File.WriteAllLines(csv, new[] { "rule,tokens,resident_mb,peak_mb_since_start,tokens_per_second" }.Concat(runs.SelectMany(r => r.Points.Select(p =>
                    CsvText.Line(r.Name, p.Tokens.ToString(CultureInfo.InvariantCulture), F(p.ResidentMb), F(p.PeakMb), F(p.TokensPerSecond))))));
                var png = Path.Combine(outDir.FullName, "bench-memory.png");
                LineChart.Save(png, "Memory added while generating (CPU)", "tokens generated", "peak resident MB above the start",
                    runs.Select(r => new LineChart.Series(r.Name, r.Points.Select(p => (double)p.Tokens).ToArray(), r.Points.Select(p => p.PeakMb).ToArray())), logX: true);
                AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(csv)}[/] and [bold]{Markup.Escape(png)}[/]");
                return 0;
            }
            catch (Exception e)
            {
                return CliErrors.Fail(e);
            }
        });
        return command;
    }

    /// <summary>Generates <paramref name="count"/> tokens from a one-token prompt, sampling memory on a log-spaced grid.</summary>
    private static List<Point> Measure(FileInfo? file, AttentionRule rule, int count, Action<int> progress)
    {
        using var decoder = file is null ? DecoderModel.Default(rule) : DecoderModel.Load(file.FullName, rule);
        using var generator = new Generator(decoder, new GeneratorParams(count, Sampling: new SamplingOptions(Temperature: 1f, Seed: 1)), [[1]]);
        GC.Collect();
        ProcessMemory.ResetPeak();
        var start = ProcessMemory.Read().ResidentBytes;
        var marks = Marks(count);
        var points = new List<Point>();
        generator.Prefill();
        var clock = Stopwatch.StartNew();
        var lastMark = 0;
        var lastTime = 0.0;
        for (var n = 1; n <= count; n++)
        {
            generator.GenerateNextToken();
            if (marks.Contains(n))
            {
                var m = ProcessMemory.Read();
                var now = clock.Elapsed.TotalSeconds;
                points.Add(new Point(n, (m.ResidentBytes - start) / 1e6, (m.PeakResidentBytes - start) / 1e6, (n - lastMark) / Math.Max(1e-9, now - lastTime)));
                (lastMark, lastTime) = (n, now);
            }
            if (n % 256 == 0) progress(n);
        }
        progress(count);
        return points;
    }

    private static HashSet<int> Marks(int count)
    {
        var marks = new HashSet<int> { count };
        for (var m = 100; m <= count; m = m * 10)
        {
            foreach (var f in new[] { 1, 2, 5 }) if (m * f <= count) marks.Add(m * f);
        }
        return marks;
    }

    private static void Print(List<(string Name, List<Point> Points)> runs)
    {
        var table = new Table().Title("memory added since the start of generation (MB, resident; peak = high-water mark)").AddColumn("tokens");
        foreach (var (name, _) in runs) table.AddColumn($"{name} peak").AddColumn($"{name} tokens/s");
        foreach (var tokens in TableRows(runs.Select(r => r.Points.Count > 0 ? r.Points[^1].Tokens : 0)))
        {
            var row = new List<string> { tokens.ToString("N0", CultureInfo.InvariantCulture) };
            foreach (var (_, points) in runs)
            {
                var p = points.FirstOrDefault(x => x.Tokens == tokens);
                row.Add(p is null ? "not run" : p.PeakMb.ToString("F1", CultureInfo.InvariantCulture));
                row.Add(p is null ? "" : p.TokensPerSecond.ToString("F0", CultureInfo.InvariantCulture));
            }
            table.AddRow(row.ToArray());
        }
        AnsiConsole.Write(table);
    }

    /// <summary>
    /// The table's rows: 1k, 10k and 100k tokens, plus where each run ended, so a run of any length shows its last
    /// measurement (a 2,000-token run would otherwise print only its 1,000-token row).
    /// </summary>
    public static IReadOnlyList<int> TableRows(IEnumerable<int> runEnds) =>
        new[] { 1_000, 10_000, 100_000 }.Concat(runEnds.Where(n => n > 0)).Distinct().Order().ToArray();

    private static string F(double v) => CsvText.Number(v);
}
