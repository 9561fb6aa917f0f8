using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using OnnxAttention.Cli.Reporting;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Diagnostics;
using OnnxAttention.Host.Genai;
using OnnxAttention.Host.Generation;
using Spectre.Console;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention bench-generate</c>: end-to-end generation on the genai-form Llama (about 100M parameters by
/// default), prefill and decode tokens/s and the peak memory a run adds, per context and batch, for onnxruntime-genai
/// running the original model, our Host running it with softmax, window and linear rules, and genai running the
/// swapped model. In each (context, batch) cell the contenders run one after the other, so every comparison is taken on
/// the same machine within seconds. A cell whose time, extrapolated from the contender's previous cell, would pass
/// --max-seconds is not run and is reported as such.
/// </summary>
public static class BenchGenerateCommand
{
    private sealed record Result(string Contender, int Context, int Batch, double PrefillTokensPerSecond, double DecodeTokensPerSecond, double PeakMb, string Status);

    /// <summary>
    /// One way of generating, <see cref="Key"/> one of <see cref="Keys"/>; <see cref="Exponent"/>: how its time grows with
    /// the context (for the skip estimate).
    /// </summary>
    private sealed record Contender(string Key, string Name, double Exponent, Func<IReadOnlyList<IReadOnlyList<int>>, int, (double Prefill, double Decode)> Run, IDisposable Owner);

    private static readonly string[] Keys = ["genai-original", "host-softmax", "host-window", "host-linear", "genai-swapped"];

    public static Command Create()
    {
        var size = new Option<string>("--size") { Description = "model: 100m (12 layers, hidden 768, 12/4 heads) or tiny", DefaultValueFactory = _ => "100m" };
        var contexts = new Option<string>("--contexts") { Description = "prompt lengths, comma-separated", DefaultValueFactory = _ => "1024,4096,16384,65536" };
        var batches = new Option<string>("--batches") { Description = "batch sizes, comma-separated", DefaultValueFactory = _ => "1,8" };
        var decode = new Option<int>("--decode-tokens") { Description = "decode steps timed after the prefill", DefaultValueFactory = _ => 32 };
        var chunk = new Option<int>("--prefill-chunk") { Description = "our Host prefills in pieces of this many tokens (bounds the logits it holds; genai prefills whole)", DefaultValueFactory = _ => 1024 };
        var window = new Option<string>("--window-rule") { Description = "the window rule run by our Host", DefaultValueFactory = _ => "window:1024,sinks=4" };
        var linear = new Option<string>("--linear-rule") { Description = "the linear rule run by our Host and, swapped, by genai", DefaultValueFactory = _ => "linear-elu" };
        var maxSeconds = new Option<double>("--max-seconds") { Description = "skip a cell whose estimated time (from the contender's previous cell) passes this", DefaultValueFactory = _ => 180 };
        var only = new Option<string>("--contenders") { Description = "which contenders run, comma-separated: " + string.Join(", ", Keys), DefaultValueFactory = _ => string.Join(",", Keys) };
        var quick = new Option<bool>("--quick") { Description = "tiny model, contexts 256,1024, batches 1,2, 8 decode steps" };
        var nativeLibrary = new Option<FileInfo?>("--native-library") { Description = "libonnxattention.so for genai (default: artifacts/native/linux-x64/ from ./build-native.sh)" };
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for bench-generate.csv and the plots", DefaultValueFactory = _ => new DirectoryInfo("artifacts/bench") };
        var command = new Command("bench-generate", "Prefill/decode tokens/s and peak memory: onnxruntime-genai vs our Host, original and swapped models, per context and batch.")
        {
            size, contexts, batches, decode, chunk, window, linear, maxSeconds, only, quick, nativeLibrary, output,
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
            if (contextList.Max() + steps + 1 > config.ContextLength)
            {
                config = config with { ContextLength = contextList.Max() + steps + 1 };
            }
            var chosen = parse.GetValue(only)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
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
            var contenders = new List<Contender>();
            try
            {
                console.MarkupLine($"model: genai-form Llama, {config.Layers} layers, hidden {config.Hidden}, {config.Heads}/{config.KvHeads} heads, vocabulary {config.Vocab}, {config.Parameters:N0} parameters");
                console.MarkupLine($"machine: {Environment.ProcessorCount} logical CPUs; ONNX Runtime {Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetVersionString()}, onnxruntime-genai 0.20.0");
                contenders.AddRange(Load(config, work, library, parse.GetValue(window)!, parse.GetValue(linear)!, parse.GetValue(chunk), chosen));
                var results = Measure(console, contenders, contextList, batchList, steps, config.Vocab, parse.GetValue(maxSeconds));
                Report(console, results, contenders, outDir.FullName);
                return 0;
            }
            finally
            {
                foreach (var c in contenders) c.Owner.Dispose();
                Directory.Delete(work, recursive: true);
            }
        }));
        return command;
    }

    private static int[] Ints(string text, string option)
    {
        var values = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(t => int.TryParse(t, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v
                : throw new ArgumentException($"{option}: '{t}' is not a positive integer")).ToArray();
        return values.Length > 0 ? values.Distinct().Order().ToArray() : throw new ArgumentException($"{option} is empty");
    }

    private static List<Contender> Load(GenaiLlamaConfig config, string work, string library, string windowRule, string linearRule, int chunk, HashSet<string> chosen)
    {
        var model = GenaiLlamaModel.Build(config);
        var list = new List<Contender>();
        if (chosen.Contains("genai-original"))
        {
            var original = Path.Combine(work, "original");
            GenaiFolder.WriteOriginal(model, config, original);
            list.Add(GenaiContender("genai-original", "genai original (GQA + KV cache)", 1.5, original));
        }
        foreach (var (key, rule, exponent) in new[] { ("host-softmax", "softmax", 1.5), ("host-window", windowRule, 1.0), ("host-linear", linearRule, 1.0) })
        {
            if (!chosen.Contains(key)) continue;
            var decoder = DecoderModel.FromExported(model.Clone(), AttentionRule.Parse(rule), source: "genai-form Llama");
            list.Add(new Contender(key, $"host {rule}", exponent, (prompts, steps) => HostRun(decoder, prompts, steps, chunk), decoder));
        }
        if (chosen.Contains("genai-swapped"))
        {
            var swapped = Path.Combine(work, "swapped");
            GenaiFolder.WriteSwapped(model, AttentionRule.Parse(linearRule), swapped, library);
            list.Add(GenaiContender("genai-swapped", $"genai swapped {linearRule}", 1.0, swapped));
        }
        return list;
    }

    private static Contender GenaiContender(string key, string name, double exponent, string folder)
    {
        var genai = GenaiModel.Open(folder);
        return new Contender(key, name, exponent, (prompts, steps) =>
        {
            var run = genai.Generate(prompts, steps + 1, ignoreEos: true);
            return (run.PrefillSeconds, run.DecodeSeconds);
        }, genai);
    }

    /// <summary>Prefill, then steps + 1 GenerateNextToken calls: the first only samples from the prefill's logits, as genai's does.</summary>
    private static (double Prefill, double Decode) HostRun(DecoderModel decoder, IReadOnlyList<IReadOnlyList<int>> prompts, int steps, int chunk)
    {
        using var g = new Generator(decoder, new GeneratorParams(steps + 1), prompts);
        var clock = Stopwatch.StartNew();
        g.PrefillInPieces(chunk);
        var prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        while (!g.IsDone) g.GenerateNextToken();
        return (prefill, clock.Elapsed.TotalSeconds);
    }

    private static List<Result> Measure(IAnsiConsole console, List<Contender> contenders, int[] contexts, int[] batches, int steps, int vocab, double maxSeconds)
    {
        var results = new List<Result>();
        var last = new Dictionary<string, (int Context, int Batch, double Seconds)>();
        var random = new Random(7);
        foreach (var context in contexts)
        {
            foreach (var batch in batches)
            {
                var prompts = Enumerable.Range(0, batch).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, context).Select(_ => random.Next(3, vocab)).ToArray()).ToList();
                foreach (var c in contenders)
                {
                    if (last.TryGetValue(c.Name, out var before))
                    {
                        var estimate = before.Seconds * (batch / (double)before.Batch) * Math.Pow(context / (double)before.Context, c.Exponent);
                        if (estimate > maxSeconds)
                        {
                            results.Add(new Result(c.Name, context, batch, double.NaN, double.NaN, double.NaN, $"not run: estimated {estimate:F0} s > --max-seconds"));
                            console.MarkupLine($"[grey]{Markup.Escape(c.Name)} at {context} x {batch}: skipped (estimated {estimate:F0} s)[/]");
                            continue;
                        }
                    }
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    GC.Collect();
                    ProcessMemory.ReturnFreedMemory();
                    ProcessMemory.ResetPeak();
                    var start = ProcessMemory.Read().ResidentBytes;
                    var (prefill, decode) = c.Run(prompts, steps);
                    var peak = (ProcessMemory.Read().PeakResidentBytes - start) / 1e6;
                    var r = new Result(c.Name, context, batch, batch * (double)context / prefill, batch * (double)steps / decode, peak, "measured");
                    results.Add(r);
                    last[c.Name] = (context, batch, prefill + decode);
                    console.MarkupLine($"{Markup.Escape(c.Name)} at {context} x {batch}: prefill {r.PrefillTokensPerSecond:F0} tokens/s, decode {r.DecodeTokensPerSecond:F1} tokens/s, peak +{peak:F0} MB ({prefill + decode:F1} s)");
                }
            }
        }
        return results;
    }

    private static void Report(IAnsiConsole console, List<Result> results, List<Contender> contenders, string outDir)
    {
        var names = contenders.Select(c => c.Name).ToList();
        var table = new Table().Title("bench-generate: prefill / decode tokens/s and peak resident memory added by the run (MB)")
            .AddColumn("context").AddColumn("batch");
        foreach (var n in names) table.AddColumn(n);
        foreach (var cell in results.GroupBy(r => (r.Context, r.Batch)))
        {
            var row = new List<string> { cell.Key.Context.ToString(CultureInfo.InvariantCulture), cell.Key.Batch.ToString(CultureInfo.InvariantCulture) };
            foreach (var n in names)
            {
                var r = cell.First(x => x.Contender == n);
                row.Add(r.Status == "measured" ? $"{r.PrefillTokensPerSecond:F0} / {r.DecodeTokensPerSecond:F1} / {r.PeakMb:F0}" : "not run");
            }
            table.AddRow(row.ToArray());
        }
        console.Write(table);
        foreach (var line in Targets(results, contenders.ToDictionary(c => c.Key, c => c.Name))) console.MarkupLine(Markup.Escape(line));

        var csv = Path.Combine(outDir, "bench-generate.csv");
        File.WriteAllLines(csv, new[] { "contender,context,batch,prefill_tokens_per_second,decode_tokens_per_second,peak_mb,status" }.Concat(results.Select(r =>
            CsvText.Line(r.Contender, r.Context.ToString(CultureInfo.InvariantCulture), r.Batch.ToString(CultureInfo.InvariantCulture),
                CsvText.Number(r.PrefillTokensPerSecond), CsvText.Number(r.DecodeTokensPerSecond), CsvText.Number(r.PeakMb), r.Status))));
        var plots = new[]
        {
            ("bench-generate-decode.png", "Decode tokens/s against context", "decode tokens/s", (Func<Result, double>)(r => r.DecodeTokensPerSecond)),
            ("bench-generate-prefill.png", "Prefill tokens/s against context", "prefill tokens/s", r => r.PrefillTokensPerSecond),
            ("bench-generate-memory.png", "Peak memory added by a run against context", "peak resident MB above the start", r => r.PeakMb),
        };
        foreach (var (file, title, y, pick) in plots)
        {
            var series = results.Where(r => r.Status == "measured").GroupBy(r => (r.Contender, r.Batch))
                .Select(g => new LineChart.Series($"{g.Key.Contender}, batch {g.Key.Batch}", g.Select(r => (double)r.Context).ToArray(), g.Select(pick).ToArray()));
            LineChart.Save(Path.Combine(outDir, file), title + " (CPU)", "context (prompt tokens)", y, series, logX: true, logY: file.Contains("memory", StringComparison.Ordinal) ? false : true);
        }
        console.MarkupLine($"wrote [bold]{Markup.Escape(csv)}[/] and {string.Join(", ", plots.Select(p => p.Item1))}");
    }

    /// <summary>The issue's targets as ratios taken in the same run, each with the cells it compares, or why it could not be computed.</summary>
    private static IEnumerable<string> Targets(List<Result> results, Dictionary<string, string> names)
    {
        Result? At(string name, int context, int batch) => results.FirstOrDefault(r => r.Contender == name && r.Context == context && r.Batch == batch && r.Status == "measured");
        string Name(string key) => names.GetValueOrDefault(key, key);
        string genaiOriginal = Name("genai-original"), hostSoftmax = Name("host-softmax"), genaiSwapped = Name("genai-swapped"), hostLinear = Name("host-linear");
        var stateRules = new[] { Name("host-window"), hostLinear, genaiSwapped };
        if (!results.Any(r => r.Status == "measured")) yield break;
        var smallest = results.Min(r => r.Context);
        var largest = results.Where(r => r.Status == "measured").Max(r => r.Context);
        foreach (var batch in results.Select(r => r.Batch).Distinct())
        {
            if (At(genaiOriginal, smallest, batch) is { } g && At(hostSoftmax, smallest, batch) is { } h)
            {
                yield return $"batch {batch}, context {smallest}: host softmax / genai original = prefill {h.PrefillTokensPerSecond / g.PrefillTokensPerSecond:F2}, decode {h.DecodeTokensPerSecond / g.DecodeTokensPerSecond:F2} (target >= 1)";
            }
            foreach (var rule in stateRules)
            {
                var runs = results.Where(r => r.Contender == rule && r.Batch == batch && r.Status == "measured").OrderBy(r => r.Context).ToList();
                if (runs.Count >= 2)
                {
                    yield return $"batch {batch}, {rule}: decode at {runs[^1].Context} / at {runs[0].Context} = {runs[^1].DecodeTokensPerSecond / runs[0].DecodeTokensPerSecond:F2} (target >= 0.9); " +
                        $"peak memory {runs.Min(r => r.PeakMb):F0} .. {runs.Max(r => r.PeakMb):F0} MB over contexts {runs[0].Context} .. {runs[^1].Context} (target: flat)";
                }
                if (At(genaiOriginal, largest, batch) is { } go && At(rule, largest, batch) is { } s)
                {
                    yield return $"batch {batch}, context {largest}: {rule} decode / genai original decode = {s.DecodeTokensPerSecond / go.DecodeTokensPerSecond:F1} (target >= 10 at 65536)";
                }
            }
            foreach (var context in results.Select(r => r.Context).Distinct())
            {
                if (At(genaiSwapped, context, batch) is { } gs && At(hostLinear, context, batch) is { } hl)
                {
                    yield return $"batch {batch}, context {context}: genai swapped / host, same rule = prefill {gs.PrefillTokensPerSecond / hl.PrefillTokensPerSecond:F2}, decode {gs.DecodeTokensPerSecond / hl.DecodeTokensPerSecond:F2} (target: within 10%)";
                }
            }
        }
    }
}
