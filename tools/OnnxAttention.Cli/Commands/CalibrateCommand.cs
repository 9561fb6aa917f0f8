using System.CommandLine;
using System.Diagnostics;
using OnnxAttention.Cli.Reporting;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using Spectre.Console;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention calibrate --model M --calibration IDS.pb --state-budget BYTES --out OUT.onnx</c>: measures the
/// original model on calibration ids, chooses a constant-memory rule per layer whose state fits the budget
/// (<see cref="PlanSearch"/>), and writes the model swapped with that plan.
/// </summary>
public static class CalibrateCommand
{
    public static Command Create()
    {
        var model = new Option<FileInfo>("--model") { Description = "the unswapped decoder: an exported .onnx or a llama2.c .bin", Required = true };
        var ids = new Option<FileInfo?>("--calibration") { Description = "calibration ids: an ONNX TensorProto of int64 [batch, seq] (generate --save-ids writes one)" };
        var text = new Option<FileInfo?>("--text") { Description = "a calibration text instead, encoded with --tokenizer and cut into rows of --seq tokens" };
        var tokenizer = new Option<string>("--tokenizer") { Description = "with --text: 'bytes' (one token per UTF-8 byte) or a tokenizer folder / SentencePiece .model", DefaultValueFactory = _ => IdsFile.Bytes };
        var seq = new Option<int>("--seq") { Description = "with --text: tokens per row", DefaultValueFactory = _ => 512 };
        var maxRows = new Option<int>("--rows") { Description = "with --text: this many rows, evenly spaced over the text (0: all)", DefaultValueFactory = _ => 8 };
        var budget = new Option<long>("--state-budget") { Description = "most bytes of state per sequence, all layers together, whatever the context length", Required = true };
        var from = new Option<int>("--from") { Description = "KL is averaged over positions from this one on (default: three quarters into the sequence, where a constant memory is furthest behind)", DefaultValueFactory = _ => -1 };
        var moves = new Option<int>("--moves") { Description = "most whole-plan runs spent improving the best plan one layer at a time", DefaultValueFactory = _ => 24 };
        var output = new Option<FileInfo>("--out") { Description = "where to write the calibrated (swapped) model", Required = true };
        var fit = new Option<string>("--fit")
        {
            Description = "sizes m of learned Hedgehog feature maps (2m features) to fit per layer by attention transfer and offer to the plan search, e.g. 4,8; 'none' for none",
            DefaultValueFactory = _ => "2,4,16",
        };
        var fitWindows = new Option<string>("--fit-windows")
        {
            Description = "for each fitted size: 0 = linear attention on the learned features alone, W > 0 = a window of W tokens sharing one normaliser with them (HybridAttention compress=hedgehog)",
            DefaultValueFactory = _ => "0,4",
        };
        var fitSteps = new Option<int>("--fit-steps") { Description = "Adam steps per fitted layer and size", DefaultValueFactory = _ => 100 };
        var threads = new Option<int>("--threads") { Description = "ORT intra-op threads (0: ORT's default)", DefaultValueFactory = _ => 0 };
        var workers = new Option<int>("--workers") { Description = "model runs measured at once, sharing the intra-op threads (default: one per core)", DefaultValueFactory = _ => Environment.ProcessorCount };
        var stateTypes = new Option<string>("--state-types")
        {
            Description = "state types the candidates keep their state in between calls, e.g. float16, float16,int8 or float32,float16 (float16/bfloat16: half the bytes; int8: caches of keys and values in 8 bits plus a float16 scale per vector; see RULE,state=TYPE)",
            DefaultValueFactory = _ => "float16",
        };
        var idWindows = new Option<string>("--id-windows")
        {
            Description = "windows W to offer as window:W,keys=ids (token ids kept, 4 bytes a token; keys and values recomputed each call, which costs W tokens' key and value projections a step) in the layers whose keys come from the ids alone (layer 0), where the swap accepts it; 'none' for none",
            DefaultValueFactory = _ => "128,256,512",
        };
        var grow = new Option<bool>("--grow")
        {
            Description = "after the search, give the bytes the plan leaves under the budget to its windows, kept where the measured KL falls (false: the searched plan as it is)",
            DefaultValueFactory = _ => true,
        };
        var tuning = new CalibrateTuning();
        var given = new Option<string?>("--plan")
        {
            Description = "a rule per layer instead of the search, e.g. 'window:64@0;hybrid-hedgehog:16,8@1-4': linear-hedgehog:M and hybrid-hedgehog:W,M are fitted there (--fit-steps)",
        };
        var command = new Command("calibrate", "Choose and fit a constant-memory attention per layer within a state budget, measured against the original model, and save it.")
        {
            model, ids, text, tokenizer, seq, maxRows, budget, from, moves, fit, fitWindows, fitSteps, output, threads, workers, stateTypes, idWindows, grow,
        };
        foreach (var option in tuning.Options) command.Options.Add(option);
        command.Options.Add(given);
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            var modelFile = parse.GetValue(model)!;
            var inputs = new[] { modelFile, parse.GetValue(ids), parse.GetValue(text) }.OfType<FileInfo>().ToArray();
            CliErrors.RefuseOverwritingAnInput("--out", parse.GetValue(output)!, inputs);
            if (parse.GetValue(budget) <= 0) throw new ArgumentException($"--state-budget must be a positive number of bytes, got {parse.GetValue(budget)}");
            if (parse.GetValue(threads) < 0) throw new ArgumentException($"--threads must be >= 0 (0: ORT's default), got {parse.GetValue(threads)}");
            if (parse.GetValue(workers) <= 0) throw new ArgumentException($"--workers must be positive, got {parse.GetValue(workers)}");
            var types = StateTypes(parse.GetValue(stateTypes)!);
            if (parse.GetValue(moves) < 0) throw new ArgumentException($"--moves must be >= 0, got {parse.GetValue(moves)}");
            var proto = ModelArguments.Load(modelFile.FullName);
            if (ModelArguments.IsSwapped(proto)) throw new ArgumentException($"model '{modelFile.FullName}' is already swapped ({ModelArguments.RecordedRule(proto)}); calibrate the original");
            var quality = new QualityModel(proto, parse.GetValue(threads));
            if ((parse.GetValue(ids) is null) == (parse.GetValue(text) is null)) throw new ArgumentException("give the calibration ids with exactly one of --calibration IDS.pb and --text FILE");
            var vocab = QualityModel.Vocab(proto);
            var (values, rows, length) = parse.GetValue(ids) is { } idsFile ? IdsFile.Read(idsFile.FullName, "--calibration")
                : IdsFile.FromText(parse.GetValue(text)!.FullName, parse.GetValue(tokenizer)!, parse.GetValue(seq), parse.GetValue(maxRows), vocab);
            IdsFile.CheckRange(values, length, vocab, "--calibration");
            var first = parse.GetValue(from) < 0 ? length * 3 / 4 : parse.GetValue(from);
            if (first >= length) throw new ArgumentException($"--from {first} leaves no position of the {length} measured");

            var sizes = FitSizes(parse.GetValue(fit)!);
            var windows = FitWindows(parse.GetValue(fitWindows)!);
            var keptIds = parse.GetValue(idWindows)!.Trim().Equals("none", StringComparison.OrdinalIgnoreCase) ? [] : IdWindows(parse.GetValue(idWindows)!);
            if (parse.GetValue(fitSteps) <= 0) throw new ArgumentException($"--fit-steps must be positive, got {parse.GetValue(fitSteps)}");
            var tune = tuning.Requested(parse, modelFile);

            var console = Terminal.Open();
            var search = new PlanSearch(quality, values, rows, first, parse.GetValue(workers));
            var fitClock = new Stopwatch();
            PlanSearch.Plan? plan = null;
            IReadOnlyList<FittedCandidates.Fit> fits = [];
            console.Status().Start("calibrating", status =>
            {
                if (parse.GetValue(given) is { } text)
                {
                    plan = CalibratePlan.Parse(text, quality.Layers).Make(quality, search, values, rows, parse.GetValue(fitSteps), parse.GetValue(budget), step => status.Status(Markup.Escape(step)));
                    return;
                }
                fitClock.Start();
                fits = FittedCandidates.Make(quality, values, rows, sizes, windows, parse.GetValue(fitSteps), step => status.Status(Markup.Escape(step)));
                fitClock.Stop();
                var candidates = PlanSearch.DefaultCandidates(types);
                var fitted = fits.Count == 0 ? null : FittedCandidates.PerLayer(fits, quality.Layers).Select(l => PlanSearch.InStateTypes(l, types)).ToList();
                plan = search.Search(tune ? CalibrateTuning.Candidates(candidates) : candidates, parse.GetValue(budget), maxMoves: parse.GetValue(moves),
                    progress: step => status.Status(Markup.Escape($"run {search.Runs + 1}: {step}")),
                    perLayer: IdWindowCandidates.Join(fitted, keptIds.Length == 0 ? null : IdWindowCandidates.PerLayer(quality, keptIds)), grow: parse.GetValue(grow));
            });
            foreach (var f in fits)
            {
                console.WriteLine($"layer {f.Layer}: {f.Rule.Spelling} fitted in {parse.GetValue(fitSteps)} steps: attention output MSE {f.Result.Mse:G4} ({f.Result.Explained:P1} of its variance reproduced)");
            }
            var chosen = plan ?? throw new InvalidOperationException("the plan search returned no plan");
            var tuned = tune ? tuning.Run(parse, console, modelFile, quality, chosen, values, rows, first) : null;
            var (swapped, report) = tuned is null ? quality.Swap(chosen.Rule) : tuned.Model.Swap(tuned.Rule);
            ModelFile.Save(swapped, parse.GetValue(output)!.FullName);

            var table = new Table().Title($"plan: {plan.Rule.Spelling}");
            table.AddColumn("layer");
            table.AddColumn("rule");
            table.AddColumn(new TableColumn("state bytes/seq").RightAligned());
            table.AddColumn(new TableColumn("KL with this layer alone swapped").RightAligned());
            for (var l = 0; l < plan.Layers.Count; l++)
            {
                table.AddRow(l.ToString(), Markup.Escape(plan.Layers[l].Rule.Spelling), report.Layers[l].StateBytesPerSequence.ToString("N0"), plan.Layers[l].Kl.ToString("F4"));
            }
            console.Write(table);
            foreach (var g in search.Grown)
            {
                console.WriteLine($"grown after the search into the unspent bytes: layer {g.Layer}'s window {g.From} -> {g.To} tokens, KL {g.KlBefore:F4} -> {g.KlAfter:F4}");
            }
            console.WriteLine($"calibration: {rows} x {length} ids; KL(original || calibrated) at positions {first}-{length - 1}: {plan.Kl:F4} nats" + (tuned is null ? "" : " before tuning"));
            if (tuned is not null)
            {
                var r = tuned.Result;
                console.WriteLine($"tuned end to end in {parse.GetValue(tuning.StepsOption)} steps in {tuned.Took.TotalSeconds:F0} s (best at step {r.BestStep}): KL at positions {first}-{length - 1}: {tuned.KlBefore:F4} -> {tuned.KlAfter:F4} nats; mean KL over all positions {r.LossBefore:F4} -> {r.LossAfter:F4}");
                if (tuned.ProjectionsChanged) console.WriteLine("the written model's attention projections (wq, wk, wv, wo of every layer) are tuned: its weights differ from the original's");
            }
            console.WriteLine($"state per sequence: {report.StateBytesPerSequence:N0} bytes (budget {parse.GetValue(budget):N0}), the same at any context length");
            var (swapTime, runTime, compareTime) = search.Spent;
            console.WriteLine($"{search.Runs} runs of the model, {parse.GetValue(workers)} at a time; {clock.Elapsed.TotalSeconds:F0} s wall, " +
                $"{Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds:F0} s of CPU time; fits {fitClock.Elapsed.TotalSeconds:F0} s wall; summed over the runs: " +
                $"swaps {swapTime.TotalSeconds:F0} s, sessions and runs {runTime.TotalSeconds:F0} s, comparisons {compareTime.TotalSeconds:F0} s");
            console.WriteLine($"wrote {parse.GetValue(output)!.FullName}");
            return 0;
        }));
        return command;
    }

    private static Graphs.Onnx.TensorProto.Types.DataType[] StateTypes(string text)
    {
        var expected = $"--state-types takes {StateTypeRule.Expected} separated by commas, got '{text}'";
        var types = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => StateTypeRule.Types.FirstOrDefault(s => s.Name == t.ToLowerInvariant()) is { Name: not null } s ? s.Type : throw new ArgumentException(expected))
            .Distinct().ToArray();
        return types.Length > 0 ? types : throw new ArgumentException(expected);
    }

    private static int[] IdWindows(string text)
    {
        var windows = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var w) && w is > 0 and <= 1 << 20 ? w
                : throw new ArgumentException($"--id-windows takes windows 1 to 1048576 separated by commas (or 'none'), got '{text}'"))
            .Distinct().ToArray();
        return windows.Length > 0 ? windows : throw new ArgumentException($"--id-windows takes windows 1 to 1048576 separated by commas (or 'none'), got '{text}'");
    }

    private static int[] FitWindows(string text)
    {
        var windows = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var w) && w <= 1 << 16 ? w
                : throw new ArgumentException($"--fit-windows takes windows 0 to 65536 separated by commas, got '{text}'"))
            .Distinct().ToArray();
        return windows.Length > 0 ? windows : throw new ArgumentException($"--fit-windows takes windows 0 to 65536 separated by commas, got '{text}'");
    }

    private static int[] FitSizes(string text)
    {
        if (text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase)) return [];
        var sizes = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var m) && m is > 0 and <= 256 ? m
                : throw new ArgumentException($"--fit takes sizes 1 to 256 separated by commas (or 'none'), got '{text}'"))
            .Distinct().ToArray();
        return sizes.Length > 0 ? sizes : throw new ArgumentException($"--fit takes sizes 1 to 256 separated by commas (or 'none'), got '{text}'");
    }
}
