using System.CommandLine;
using System.Globalization;
using OnnxAttention.Cli.Bench;
using OnnxAttention.Cli.Reporting;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Genai;
using Spectre.Console;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention bench-generate</c>: end-to-end generation on the genai-form Llama (about 100M parameters by
/// default), prefill and decode tokens/s and the peak memory a run adds, per context and batch, for onnxruntime-genai
/// running the original model, our Host running it with softmax, window and linear rules, and genai running the
/// swapped model. Every run is a fresh child process (<see cref="BenchGenerateCellCommand"/>) that loads one contender
/// from folders written once, so its peak memory is its own. In each (context, batch) cell the contenders run one
/// after the other, --repeats rounds, each round starting one contender later, so every comparison is taken on the same
/// machine within a minute or so and no contender always runs first. A cell whose time, extrapolated from the
/// contender's previous cell, would pass --max-seconds is not run and is reported as such.
/// </summary>
public static class BenchGenerateCommand
{
    /// <summary>One contender in one cell: medians over the repeats, with the smallest and largest figure.</summary>
    private sealed record Result(string Contender, int Context, int Batch, Spread Prefill, Spread Decode, Spread PeakMb, string Status);

    private readonly record struct Spread(double Median, double Min, double Max)
    {
        public static Spread Of(IReadOnlyList<double> values)
        {
            if (values.Count == 0) return new Spread(double.NaN, double.NaN, double.NaN);
            var sorted = values.Order().ToArray();
            var median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
            return new Spread(median, sorted[0], sorted[^1]);
        }

        public string Text(string format) => Min == Max ? Median.ToString(format, CultureInfo.InvariantCulture)
            : string.Create(CultureInfo.InvariantCulture, $"{Median.ToString(format, CultureInfo.InvariantCulture)} ({Min.ToString(format, CultureInfo.InvariantCulture)}..{Max.ToString(format, CultureInfo.InvariantCulture)})");
    }

    /// <summary>One child run, in the order it ran.</summary>
    private sealed record Run(string Contender, int Context, int Batch, int Repeat, int Order, double PrefillTokensPerSecond, double DecodeTokensPerSecond, double PeakMb, double LoadedMb);

    private sealed record Contender(string Key, string Name);

    private static readonly string[] Keys = GenerateContenders.Keys;

    public static Command Create()
    {
        var size = new Option<string>("--size") { Description = "model: 100m (12 layers, hidden 768, 12/4 heads) or tiny", DefaultValueFactory = _ => "100m" };
        var contexts = new Option<string>("--contexts") { Description = "prompt lengths, comma-separated", DefaultValueFactory = _ => "1024,4096,16384,65536" };
        var batches = new Option<string>("--batches") { Description = "batch sizes, comma-separated", DefaultValueFactory = _ => "1,8" };
        var decode = new Option<int>("--decode-tokens") { Description = "decode steps timed after the prefill", DefaultValueFactory = _ => 32 };
        var chunk = new Option<int>("--prefill-chunk") { Description = "prompts are prefilled in pieces of this many tokens: by our Host always, by genai at batch 1 (genai appends a batch in one call); bounds the logits and attention scores a call holds", DefaultValueFactory = _ => 1024 };
        var window = new Option<string>("--window-rule") { Description = "the window rule run by our Host", DefaultValueFactory = _ => "window:1024,sinks=4" };
        var linear = new Option<string>("--linear-rule") { Description = "the linear rule run by our Host and, swapped, by genai", DefaultValueFactory = _ => "linear-elu" };
        var maxSeconds = new Option<double>("--max-seconds") { Description = "skip a cell whose estimated time (from the contender's previous cell) passes this", DefaultValueFactory = _ => 180 };
        var repeats = new Option<int>("--repeats") { Description = "rounds per cell (each round runs every contender once, starting one contender later); the table gives medians and ranges", DefaultValueFactory = _ => 1 };
        var roundSeconds = new Option<double>("--round-seconds") { Description = "a cell's next round starts only when its previous round took less than this (long contexts get one round, short ones --repeats)", DefaultValueFactory = _ => double.PositiveInfinity };
        var warmup = new Option<int>("--warmup-steps") { Description = "decode steps of a short generation (32-token prompts) each run does before the measured one, so that no side is timed while the .NET JIT compiles it (0: none, a cold run)", DefaultValueFactory = _ => 16 };
        var cellTimeout = new Option<double>("--cell-timeout") { Description = "seconds after which a run is stopped and reported as not finished (0: none)", DefaultValueFactory = _ => 0 };
        var only = new Option<string>("--contenders") { Description = "which contenders run and in which order in a round, comma-separated: " + string.Join(", ", Keys), DefaultValueFactory = _ => string.Join(",", Keys) };
        var quick = new Option<bool>("--quick") { Description = "tiny model, contexts 256,1024, batches 1,2, 8 decode steps" };
        var nativeLibrary = new Option<FileInfo?>("--native-library") { Description = "libonnxattention.so for genai (default: artifacts/native/linux-x64/ from ./build-native.sh)" };
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for bench-generate.csv, bench-generate-runs.csv and the plots", DefaultValueFactory = _ => new DirectoryInfo("artifacts/bench") };
        var command = new Command("bench-generate", "Prefill/decode tokens/s and peak memory: onnxruntime-genai vs our Host, original and swapped models, per context and batch.")
        {
            size, contexts, batches, decode, chunk, window, linear, maxSeconds, repeats, roundSeconds, warmup, cellTimeout, only, quick, nativeLibrary, output,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            // A console on the Console.Out of this invocation (Spectre's default one keeps the writer it first saw).
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
            var isQuick = parse.GetValue(quick);
            var config = GenaiLlamaCommand.Config(isQuick ? "tiny" : parse.GetValue(size)!, 0);
            var contextList = isQuick ? [256, 1024] : Ints(parse.GetValue(contexts)!, "--contexts");
            var batchList = isQuick ? [1, 2] : Ints(parse.GetValue(batches)!, "--batches");
            var steps = isQuick ? 8 : parse.GetValue(decode);
            if (steps < 1) throw new ArgumentException($"--decode-tokens must be >= 1, got {steps}");
            if (parse.GetValue(chunk) < 1) throw new ArgumentException($"--prefill-chunk must be >= 1, got {parse.GetValue(chunk)}");
            if (parse.GetValue(repeats) < 1) throw new ArgumentException($"--repeats must be >= 1, got {parse.GetValue(repeats)}");
            if (parse.GetValue(warmup) < 0) throw new ArgumentException($"--warmup-steps must be >= 0, got {parse.GetValue(warmup)}");
            if (parse.GetValue(cellTimeout) < 0) throw new ArgumentException($"--cell-timeout must be >= 0, got {parse.GetValue(cellTimeout)}");
            if (contextList.Max() + steps + 1 > config.ContextLength)
            {
                config = config with { ContextLength = contextList.Max() + steps + 1 };
            }
            var chosenOrder = parse.GetValue(only)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Distinct().ToList();
            var chosen = chosenOrder.ToHashSet();
            if (chosen.Count == 0) throw new ArgumentException($"--contenders is empty; expected some of {string.Join(", ", Keys)}");
            if (chosen.FirstOrDefault(k => !Keys.Contains(k)) is { } unknown)
            {
                throw new ArgumentException($"--contenders: '{unknown}' is not one of {string.Join(", ", Keys)}");
            }
            var library = parse.GetValue(nativeLibrary)?.FullName ?? GenaiFolder.FindNativeLibrary()
                ?? throw new FileNotFoundException("the native library is not built: run ./build-native.sh or name it with --native-library");
            var outDir = parse.GetValue(output)!;
            outDir.Create();
            var work = Directory.CreateTempSubdirectory("onnxattention-bench-generate-").FullName;
            try
            {
                console.MarkupLine($"model: genai-form Llama, {config.Layers} layers, hidden {config.Hidden}, {config.Heads}/{config.KvHeads} heads, vocabulary {config.Vocab}, {config.Parameters:N0} parameters");
                console.MarkupLine($"machine: {Environment.ProcessorCount} logical CPUs; ONNX Runtime {Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetVersionString()}, onnxruntime-genai 0.20.0");
                string windowRule = parse.GetValue(window)!, linearRule = parse.GetValue(linear)!;
                var contenders = chosenOrder.Select(k => new Contender(k, GenerateContenders.DisplayName(k, windowRule, linearRule))).ToList();
                Prepare(config, work, library, AttentionRule.Parse(linearRule), chosen);
                string[] Arguments(string key, int context, int batch) =>
                [
                    "--work", work, "--contender", key, "--context", Invariant(context), "--batch", Invariant(batch), "--decode-tokens", Invariant(steps),
                    "--prefill-chunk", Invariant(parse.GetValue(chunk)), "--vocab", Invariant(config.Vocab), "--window-rule", windowRule, "--linear-rule", linearRule,
                    "--warmup-steps", Invariant(parse.GetValue(warmup)),
                ];
                var runsCsv = Path.Combine(outDir.FullName, RunsFile);
                var (results, runs) = Measure(console, contenders, contextList, batchList, steps, new Rounds(parse.GetValue(repeats), parse.GetValue(roundSeconds)), parse.GetValue(maxSeconds),
                    parse.GetValue(cellTimeout), Arguments, run => WriteRuns(runsCsv, run));
                Report(console, results, runs, contenders, outDir.FullName);
                return 0;
            }
            finally
            {
                Directory.Delete(work, recursive: true);
            }
        }));
        return command;
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static int[] Ints(string text, string option)
    {
        var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v
                : throw new ArgumentException($"{option}: '{t}' is not a positive integer")).ToArray();
        return values.Length > 0 ? values.Distinct().Order().ToArray() : throw new ArgumentException($"{option} is empty");
    }

    /// <summary>Writes the folders the cells load: the original (genai's, and our Host's source) and the swapped one for genai.</summary>
    private static void Prepare(GenaiLlamaConfig config, string work, string library, AttentionRule linearRule, HashSet<string> chosen)
    {
        var model = GenaiLlamaModel.Build(config);
        GenaiFolder.WriteOriginal(model, config, Path.Combine(work, GenerateContenders.OriginalFolder));
        if (chosen.Contains("genai-swapped"))
        {
            GenaiFolder.WriteSwapped(model, linearRule, Path.Combine(work, GenerateContenders.SwappedFolder), library);
        }
    }

    /// <summary>How many rounds a cell gets: up to <paramref name="Repeats"/>, a further one only after a round shorter than <paramref name="Seconds"/>.</summary>
    private sealed record Rounds(int Repeats, double Seconds);

    private const string RunsFile = "bench-generate-runs.csv";

    private static (List<Result> Results, List<Run> Runs) Measure(IAnsiConsole console, List<Contender> contenders, int[] contexts, int[] batches, int steps, Rounds rounds, double maxSeconds,
        double cellTimeout, Func<string, int, int, string[]> arguments, Action<List<Run>> onRun)
    {
        var results = new List<Result>();
        var runs = new List<Run>();
        var last = new Dictionary<string, (int Context, int Batch, double Seconds)>();
        var order = 0;
        foreach (var context in contexts)
        {
            foreach (var batch in batches)
            {
                var skipped = new Dictionary<string, string>();
                var failed = new Dictionary<string, string>();
                foreach (var c in contenders.Where(c => last.ContainsKey(c.Key)))
                {
                    var before = last[c.Key];
                    var estimate = before.Seconds * (batch / (double)before.Batch) * Math.Pow(context / (double)before.Context, GenerateContenders.Exponent(c.Key));
                    if (estimate > maxSeconds)
                    {
                        skipped[c.Key] = $"not run: estimated {estimate:F0} s > --max-seconds";
                        console.MarkupLine($"[grey]{Markup.Escape(c.Name)} at {context} x {batch}: skipped (estimated {estimate:F0} s)[/]");
                    }
                }
                var running = contenders.Where(c => !skipped.ContainsKey(c.Key)).ToList();
                var roundTime = 0.0;
                for (var repeat = 0; repeat < rounds.Repeats; repeat++)
                {
                    if (repeat > 0 && roundTime >= rounds.Seconds)
                    {
                        console.MarkupLine($"[grey]{context} x {batch}: {repeat} round(s), the last took {roundTime:F0} s >= --round-seconds[/]");
                        break;
                    }
                    var roundClock = System.Diagnostics.Stopwatch.StartNew();
                    for (var i = 0; i < running.Count; i++)
                    {
                        var c = running[(i + repeat) % running.Count];
                        if (failed.ContainsKey(c.Key)) continue;
                        var (m, why) = CellProcess.Run(arguments(c.Key, context, batch), cellTimeout > 0 ? TimeSpan.FromSeconds(cellTimeout) : null);
                        if (m is null)
                        {
                            failed[c.Key] = "failed: " + why;
                            console.MarkupLine($"[red]{Markup.Escape(c.Name)} at {context} x {batch}: {Markup.Escape(why)}[/]");
                            continue;
                        }
                        var run = new Run(c.Name, context, batch, repeat + 1, ++order, batch * (double)context / m.PrefillSeconds, batch * (double)steps / m.DecodeSeconds,
                            (m.PeakBytes - m.LoadedBytes) / 1e6, m.LoadedBytes / 1e6);
                        runs.Add(run);
                        onRun(runs);
                        last[c.Key] = (context, batch, m.PrefillSeconds + m.DecodeSeconds);
                        console.MarkupLine($"{Markup.Escape(c.Name)} at {context} x {batch}, round {repeat + 1}: prefill {run.PrefillTokensPerSecond:F0} tokens/s, decode {run.DecodeTokensPerSecond:F1} tokens/s, " +
                            $"peak +{run.PeakMb:F0} MB over {run.LoadedMb:F0} MB loaded ({m.PrefillSeconds + m.DecodeSeconds:F1} s)");
                    }
                    roundTime = roundClock.Elapsed.TotalSeconds;
                }
                foreach (var c in contenders)
                {
                    var mine = runs.Where(r => r.Contender == c.Name && r.Context == context && r.Batch == batch).ToList();
                    var status = skipped.GetValueOrDefault(c.Key) ?? failed.GetValueOrDefault(c.Key) ?? "measured";
                    results.Add(new Result(c.Name, context, batch, Spread.Of(mine.Select(r => r.PrefillTokensPerSecond).ToList()), Spread.Of(mine.Select(r => r.DecodeTokensPerSecond).ToList()),
                        Spread.Of(mine.Select(r => r.PeakMb).ToList()), status));
                }
            }
        }
        return (results, runs);
    }

    /// <summary>Every run so far, in order: rewritten after each run, so a run stopped midway leaves what it measured.</summary>
    private static void WriteRuns(string path, List<Run> runs) =>
        File.WriteAllLines(path, new[] { "order,round,contender,context,batch,prefill_tokens_per_second,decode_tokens_per_second,peak_mb_above_loaded,loaded_mb" }.Concat(runs.Select(r =>
            CsvText.Line(Invariant(r.Order), Invariant(r.Repeat), r.Contender, Invariant(r.Context), Invariant(r.Batch),
                CsvText.Number(r.PrefillTokensPerSecond), CsvText.Number(r.DecodeTokensPerSecond), CsvText.Number(r.PeakMb), CsvText.Number(r.LoadedMb)))));

    private static void Report(IAnsiConsole console, List<Result> results, List<Run> runs, List<Contender> contenders, string outDir)
    {
        var names = contenders.Select(c => c.Name).ToList();
        var table = new Table().Title("bench-generate: prefill / decode tokens/s and peak resident memory a run adds above the loaded model (MB); medians (smallest..largest) over the rounds")
            .AddColumn("context").AddColumn("batch");
        foreach (var n in names) table.AddColumn(n);
        foreach (var cell in results.GroupBy(r => (r.Context, r.Batch)))
        {
            var row = new List<string> { cell.Key.Context.ToString(CultureInfo.InvariantCulture), cell.Key.Batch.ToString(CultureInfo.InvariantCulture) };
            foreach (var n in names)
            {
                var r = cell.First(x => x.Contender == n);
                row.Add(r.Status == "measured" ? $"{r.Prefill.Text("F0")} / {r.Decode.Text("F1")} / {r.PeakMb.Text("F0")}" : r.Status.StartsWith("failed: not finished", StringComparison.Ordinal) ? "stopped at --cell-timeout"
                    : r.Status.StartsWith("failed", StringComparison.Ordinal) ? "failed" : "not run");
            }
            table.AddRow(row.ToArray());
        }
        console.Write(table);
        foreach (var line in Targets(results, runs, contenders.ToDictionary(c => c.Key, c => c.Name))) console.MarkupLine(Markup.Escape(line));

        var csv = Path.Combine(outDir, "bench-generate.csv");
        File.WriteAllLines(csv, new[] { "contender,context,batch,prefill_tokens_per_second,decode_tokens_per_second,peak_mb,status" }.Concat(results.Select(r =>
            CsvText.Line(r.Contender, r.Context.ToString(CultureInfo.InvariantCulture), r.Batch.ToString(CultureInfo.InvariantCulture),
                CsvText.Number(r.Prefill.Median), CsvText.Number(r.Decode.Median), CsvText.Number(r.PeakMb.Median), r.Status))));
        WriteRuns(Path.Combine(outDir, RunsFile), runs);
        var plots = new[]
        {
            ("bench-generate-decode.png", "Decode tokens/s against context", "decode tokens/s", (Func<Result, double>)(r => r.Decode.Median)),
            ("bench-generate-prefill.png", "Prefill tokens/s against context", "prefill tokens/s", r => r.Prefill.Median),
            ("bench-generate-memory.png", "Peak memory a run adds above the loaded model, against context", "peak resident MB above the loaded model", r => r.PeakMb.Median),
        };
        foreach (var (file, title, y, pick) in plots)
        {
            var series = results.Where(r => r.Status == "measured").GroupBy(r => (r.Contender, r.Batch))
                .Select(g => new LineChart.Series($"{g.Key.Contender}, batch {g.Key.Batch}", g.Select(r => (double)r.Context).ToArray(), g.Select(pick).ToArray()));
            LineChart.Save(Path.Combine(outDir, file), title + " (CPU)", "context (prompt tokens)", y, series, logX: true, logY: file.Contains("memory", StringComparison.Ordinal) ? false : true);
        }
        console.MarkupLine($"wrote [bold]{Markup.Escape(csv)}[/], bench-generate-runs.csv and {string.Join(", ", plots.Select(p => p.Item1))}");
    }

    /// <summary>
    /// The issue's targets as ratios taken in the same run, each with the cells it compares, or why it could not be
    /// computed. A ratio of two contenders is taken per round (the two runs of one round ran within a minute), and
    /// given as the median with the smallest and largest round.
    /// </summary>
    private static IEnumerable<string> Targets(List<Result> results, List<Run> runs, Dictionary<string, string> names)
    {
        Result? At(string name, int context, int batch) => results.FirstOrDefault(r => r.Contender == name && r.Context == context && r.Batch == batch && r.Status == "measured");
        Spread Ratio(string a, string b, int context, int batch, Func<Run, double> pick) => Spread.Of(runs.Where(r => r.Contender == a && r.Context == context && r.Batch == batch)
            .Join(runs.Where(r => r.Contender == b && r.Context == context && r.Batch == batch), r => r.Repeat, r => r.Repeat, (x, y) => pick(x) / pick(y)).ToList());
        string Name(string key) => names.GetValueOrDefault(key, key);
        string genaiOriginal = Name("genai-original"), hostSoftmax = Name("host-softmax"), genaiSwapped = Name("genai-swapped"), hostLinear = Name("host-linear");
        var stateRules = new[] { Name("host-window"), hostLinear, genaiSwapped };
        if (!results.Any(r => r.Status == "measured")) yield break;
        var smallest = results.Min(r => r.Context);
        var largest = results.Where(r => r.Status == "measured").Max(r => r.Context);
        foreach (var batch in results.Select(r => r.Batch).Distinct())
        {
            if (At(genaiOriginal, smallest, batch) is not null && At(hostSoftmax, smallest, batch) is not null)
            {
                yield return $"batch {batch}, context {smallest}: host softmax / genai original = prefill {Ratio(hostSoftmax, genaiOriginal, smallest, batch, r => r.PrefillTokensPerSecond).Text("F2")}, " +
                    $"decode {Ratio(hostSoftmax, genaiOriginal, smallest, batch, r => r.DecodeTokensPerSecond).Text("F2")} (target >= 1)";
            }
            foreach (var rule in stateRules)
            {
                var measured = results.Where(r => r.Contender == rule && r.Batch == batch && r.Status == "measured").OrderBy(r => r.Context).ToList();
                if (measured.Count >= 2)
                {
                    yield return $"batch {batch}, {rule}: decode at {measured[^1].Context} / at {measured[0].Context} = {measured[^1].Decode.Median / measured[0].Decode.Median:F2} (target >= 0.9); " +
                        $"peak memory above the loaded model {measured.Min(r => r.PeakMb.Median):F0} .. {measured.Max(r => r.PeakMb.Median):F0} MB over contexts {measured[0].Context} .. {measured[^1].Context} (target: flat)";
                }
                if (At(genaiOriginal, largest, batch) is not null && At(rule, largest, batch) is not null)
                {
                    yield return $"batch {batch}, context {largest}: {rule} decode / genai original decode = {Ratio(rule, genaiOriginal, largest, batch, r => r.DecodeTokensPerSecond).Text("F1")} (target >= 10 at 65536)";
                }
            }
            foreach (var context in results.Select(r => r.Context).Distinct())
            {
                if (At(genaiSwapped, context, batch) is not null && At(hostLinear, context, batch) is not null)
                {
                    yield return $"batch {batch}, context {context}: genai swapped / host, same rule = prefill {Ratio(genaiSwapped, hostLinear, context, batch, r => r.PrefillTokensPerSecond).Text("F2")}, " +
                        $"decode {Ratio(genaiSwapped, hostLinear, context, batch, r => r.DecodeTokensPerSecond).Text("F2")} (target: within 10%)";
                }
            }
        }
    }
}
