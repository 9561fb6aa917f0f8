using System.CommandLine;
using System.Globalization;
using OnnxAttention.Cli.Reporting;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using Spectre.Console;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention eval --model M --attention RULE ... --input-ids IDS.pb</c>: teacher-forced on the ids, how far each
/// rule (or already swapped model) moves the next-token distributions from the unswapped model's, by position bucket;
/// with --per-layer, each rule in one layer at a time (the others exact). Table, CSV and a plot of KL by position.
/// </summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "the unswapped decoder: an exported .onnx or a llama2.c .bin", Required = true };
        var rules = new Option<string[]>("--attention") { Description = "rules to measure, repeat for several: " + AttentionRule.Known, AllowMultipleArgumentsPerToken = false };
        var swapped = new Option<FileInfo[]>("--swapped") { Description = "models already swapped from --model (convert, calibrate), repeat for several" };
        var ids = new Option<FileInfo?>("--input-ids") { Description = "ONNX TensorProto of int64 ids [batch, seq] (generate --save-ids writes one)" };
        var text = new Option<FileInfo?>("--text") { Description = "a text file instead of --input-ids, encoded with --tokenizer and cut into rows of --seq tokens" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "with --text: 'bytes' (one token per UTF-8 byte) or a tokenizer folder / SentencePiece .model", DefaultValueFactory = _ => IdsFile.Bytes };
        var seq = new Option<int>("--seq") { Description = "with --text: tokens per row", DefaultValueFactory = _ => 512 };
        var maxRows = new Option<int>("--rows") { Description = "with --text: this many of the rows, evenly spaced over the text (0: all)", DefaultValueFactory = _ => 0 };
        var bucket = new Option<int>("--bucket") { Description = "positions per bucket in the table and CSV", DefaultValueFactory = _ => 128 };
        var perLayer = new Option<bool>("--per-layer") { Description = "also each rule in one layer at a time, the other layers exact (sensitivity)" };
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for eval.csv and eval-kl.png", DefaultValueFactory = _ => new DirectoryInfo("artifacts/eval") };
        var threads = new Option<int>("--threads") { Description = "ORT intra-op threads (0: ORT's default)", DefaultValueFactory = _ => 0 };
        var chunk = new Option<int>("--chunk")
        {
            Description = "feed the swapped models this many tokens a call, carrying their state between calls as generation does (1: token by token, where 16-bit and int8 states are rounded after every token); 0: the whole sequence in one call",
            DefaultValueFactory = _ => 0,
        };
        var command = new Command("eval", "Next-token cross-entropy, KL against the unswapped model and top-1 agreement of swapped models, by position.")
        {
            model, rules, swapped, ids, text, tokenizer, seq, maxRows, bucket, perLayer, output, threads, chunk,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var path = parse.GetValue(model)!.FullName;
            var proto = ModelArguments.Load(path);
            if (parse.GetValue(threads) < 0) throw new ArgumentException($"--threads must be >= 0 (0: ORT's default), got {parse.GetValue(threads)}");
            var quality = new QualityModel(proto, parse.GetValue(threads));
            var (values, rows, length) = ReadIds(parse.GetValue(ids), parse.GetValue(text), parse.GetValue(tokenizer)!, parse.GetValue(seq), parse.GetValue(maxRows), proto);
            if (parse.GetValue(bucket) < 1) throw new ArgumentException($"--bucket must be >= 1, got {parse.GetValue(bucket)}");
            if (parse.GetValue(chunk) < 0) throw new ArgumentException($"--chunk must be >= 0 (0: the whole sequence in one call), got {parse.GetValue(chunk)}");

            var runs = new List<Run>();
            foreach (var spelling in parse.GetValue(rules) ?? [])
            {
                var rule = AttentionRule.Parse(spelling);
                runs.Add(new Run(rule.Spelling, null, () => quality.Swap(rule)));
                if (parse.GetValue(perLayer) && rule is not SoftmaxRule && rule is not LayeredRule)
                {
                    for (var layer = 0; layer < quality.Layers; layer++)
                    {
                        var one = new LayeredRule([new LayeredRule.Entry(rule, [layer]), new LayeredRule.Entry(new SoftmaxRule(), null)]);
                        runs.Add(new Run(rule.Spelling, layer, () => quality.Swap(one)));
                    }
                }
            }
            foreach (var file in parse.GetValue(swapped) ?? [])
            {
                var other = ModelArguments.Load(file.FullName);
                if (!ModelArguments.IsSwapped(other)) throw new ArgumentException($"--swapped '{file.FullName}' is not a swapped model; give its rule with --attention instead");
                runs.Add(new Run($"{file.Name} ({ModelArguments.RecordedRule(other)})", null, () => (other, null)));
            }
            if (runs.Count == 0) throw new ArgumentException("nothing to measure: give --attention RULE and/or --swapped MODEL");

            var console = Terminal.Open();
            var results = Measure(console, quality, runs, values, rows, parse.GetValue(chunk));
            var size = parse.GetValue(bucket);
            Print(console, results, size, rows, length);
            if (parse.GetValue(chunk) > 0) console.WriteLine($"the swapped models were fed {parse.GetValue(chunk)} token(s) a call, their state carried from call to call; the original, the whole sequence in one call");
            var outDir = parse.GetValue(output)!;
            outDir.Create();
            var csv = Path.Combine(outDir.FullName, "eval.csv");
            File.WriteAllLines(csv, new[] { "rule,layer,state_bytes_per_sequence,from,to,kl,top1,ce_original,ce_swapped,ppl_swapped" }.Concat(results.SelectMany(r =>
                r.Comparison.Buckets(size).Select(b => CsvText.Line(r.Run.Name, r.Run.Layer?.ToString(CultureInfo.InvariantCulture) ?? "", r.StateBytes,
                    I(b.From), I(b.To), N(b.Kl), N(b.Top1), N(b.CrossEntropyOriginal), N(b.CrossEntropyOther), N(Math.Exp(b.CrossEntropyOther)))))));
            var png = Path.Combine(outDir.FullName, "eval-kl.png");
            LineChart.Save(png, $"KL(original || swapped) by position ({rows} x {length} ids, mean over 8 positions)", "position", "KL, nats",
                results.Where(r => r.Run.Layer is null && r.Comparison.Kl.Any(k => k > 0)).Select(r => Smoothed(r.Run.Name, r.Comparison.Kl, 8)), logY: true);
            console.MarkupLine($"wrote [bold]{Markup.Escape(csv)}[/] and [bold]{Markup.Escape(png)}[/]");
            return 0;
        }));
        return command;
    }

    /// <summary>One model to compare: a rule swapped into a copy (maybe in one layer only), or a swapped file.</summary>
    private sealed record Run(string Name, int? Layer, Func<(Graphs.Onnx.ModelProto Model, SwapReport? Report)> Swap);

    private sealed record Result(Run Run, string StateBytes, NextTokenComparison Comparison);

    private static (long[] Ids, int Rows, int Seq) ReadIds(FileInfo? ids, FileInfo? text, string tokenizer, int seq, int maxRows, Graphs.Onnx.ModelProto model)
    {
        if ((ids is null) == (text is null)) throw new ArgumentException("give the ids with exactly one of --input-ids IDS.pb and --text FILE");
        var vocab = QualityModel.Vocab(model);
        var read = ids is not null ? IdsFile.Read(ids.FullName, "--input-ids") : IdsFile.FromText(text!.FullName, tokenizer, seq, maxRows, vocab);
        IdsFile.CheckRange(read.Ids, read.Seq, vocab, ids is not null ? "--input-ids" : "--text");
        return read;
    }

    private static List<Result> Measure(IAnsiConsole console, QualityModel quality, List<Run> runs, long[] ids, int rows, int chunk)
    {
        var results = new List<Result>();
        console.Progress().AutoClear(true).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask($"{runs.Count + 1} runs of {rows} x {ids.Length / rows} ids" + (chunk == 0 ? "" : $", {chunk} a call"), maxValue: runs.Count + 1);
                var original = quality.Logits(new SoftmaxRule(), ids, rows);
                task.Increment(1);
                foreach (var run in runs)
                {
                    task.Description = Markup.Escape(run.Layer is null ? run.Name : $"{run.Name} in layer {run.Layer}");
                    var (swapped, _) = run.Swap();
                    var logits = QualityModel.Run(swapped, ids, rows, quality.IntraOpThreads, chunk);
                    results.Add(new Result(run, StateBytes(swapped), NextTokenComparison.Compare(original, logits, ids, rows)));
                    task.Increment(1);
                }
            });
        return results;
    }

    /// <summary>Fixed state per sequence, or what a growing KV cache costs per token.</summary>
    private static string StateBytes(Graphs.Onnx.ModelProto swapped)
    {
        var info = ModelContract.Read(swapped);
        var fixedBytes = info.State.Where(s => !s.Grows).Sum(s => s.BytesPerRow);
        var growing = info.State.Sum(s => s.BytesPerToken);
        return growing > 0 ? $"{fixedBytes} + {growing}/token" : fixedBytes.ToString(CultureInfo.InvariantCulture);
    }

    private static void Print(IAnsiConsole console, List<Result> results, int size, int rows, int length)
    {
        var buckets = results[0].Comparison.Buckets(size);
        var table = new Table().Title($"teacher-forced on {rows} x {length} ids: KL(original || swapped) nats / top-1 agreement, by position");
        table.AddColumn("rule");
        table.AddColumn("layer");
        table.AddColumn(new TableColumn("state bytes/seq").RightAligned());
        table.AddColumn(new TableColumn("CE original -> swapped").RightAligned());
        foreach (var b in buckets) table.AddColumn(new TableColumn($"{b.From}-{b.To - 1}").RightAligned());
        foreach (var r in results)
        {
            var all = r.Comparison.Bucket(0, r.Comparison.Positions);
            table.AddRow([Markup.Escape(r.Run.Name), r.Run.Layer?.ToString(CultureInfo.InvariantCulture) ?? "all", r.StateBytes,
                $"{all.CrossEntropyOriginal:F3} -> {all.CrossEntropyOther:F3}",
                .. r.Comparison.Buckets(size).Select(b => $"{b.Kl:F3} / {b.Top1:P0}")]);
        }
        console.Write(table);
        var ce = results[0].Comparison.Bucket(0, results[0].Comparison.Positions).CrossEntropyOriginal;
        console.MarkupLine($"original model: cross-entropy {ce:F3} nats/token (perplexity {Math.Exp(ce):F2})");
    }

    private static LineChart.Series Smoothed(string name, IReadOnlyList<double> values, int width)
    {
        var xs = new List<double>();
        var ys = new List<double>();
        for (var from = 0; from < values.Count; from += width)
        {
            var to = Math.Min(values.Count, from + width);
            xs.Add((from + to - 1) / 2.0);
            ys.Add(values.Skip(from).Take(to - from).Average());
        }
        return new LineChart.Series(name, [.. xs], [.. ys]);
    }

    private static string I(int v) => v.ToString(CultureInfo.InvariantCulture);

    private static string N(double v) => CsvText.Number(v);
}
