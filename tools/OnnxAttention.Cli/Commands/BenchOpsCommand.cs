using System.CommandLine;
using System.Globalization;
using OnnxAttention.Cli.Bench;
using OnnxAttention.Cli.Reporting;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using Spectre.Console;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention bench-ops</c>: our CPU kernels next to ONNX Runtime's own on the same inputs, in one run,
/// plus the machine's measured limits. Prints a table and writes CSV and PNG plots.
/// </summary>
public static class BenchOpsCommand
{
    /// <param name="Paired">the median over interleaved rounds of peer time / our time, where the two were timed side by side.</param>
    private sealed record Row(string Section, string Case, string Ours, double OursUs, string Peer, double PeerUs, string Note, double? Paired = null)
    {
        public double Speedup => Paired ?? PeerUs / OursUs;
    }

    /// <summary>Interleaved rounds of ours and the peer: the machine may be shared, so the ratio is taken per round.</summary>
    private const int PairRounds = 3;

    /// <summary>
    /// Groups of rows <c>--ops</c> selects: LinearAttention vs ORT's; Linear decode vs GQA over contexts; WindowAttention
    /// decode vs GQA local windows; Summary, Hybrid and Segment decode at a 16k context and prefill vs GQA.
    /// </summary>
    private static readonly string[] Groups = ["linear", "context", "window", "summary", "hybrid", "segment"];

    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--out") { Description = "folder for bench-ops.csv and the PNG plots", DefaultValueFactory = _ => new DirectoryInfo("artifacts/bench") };
        var threads = new Option<int>("--threads") { Description = "ORT intra-op threads for every session (0: ORT's default)", DefaultValueFactory = _ => 0 };
        var quick = new Option<bool>("--quick") { Description = "a few small cases only (a smoke run)" };
        var ops = new Option<string>("--ops")
        {
            Description = $"comma-separated groups to run: {string.Join(", ", Groups)} (default: all)",
            DefaultValueFactory = _ => string.Join(',', Groups),
        };
        // Developer options: our kernel forms side by side with ORT's, instead of the report.
        var forms = new Option<bool>("--forms") { Description = "time each LinearAttention kernel form against ORT in interleaved rounds (only that)", Hidden = true };
        var rounds = new Option<int>("--rounds") { Description = "interleaved rounds for --forms", DefaultValueFactory = _ => 5, Hidden = true };
        var quantile = new Option<double>("--quantile") { Description = "per round, this quantile of the calls' times (--forms)", DefaultValueFactory = _ => 0.5, Hidden = true };
        var phase = new Option<string?>("--phase") { Description = "decode, prefill, window, or recurrent (Summary/Hybrid/Segment, untuned vs tuned) only (--forms)", Hidden = true };
        var ep = new Option<string>("--ep")
        {
            Description = "execution provider of every session: cpu, cuda or cuda:N (GPU build; ours and ORT's CUDA kernels on the same device inputs)",
            DefaultValueFactory = _ => "cpu",
        };
        var type = new Option<string>("--type")
        {
            Description = "activation type of every timed model, ours and ORT's: float32, float16 or bfloat16 (states stay float32 in ours; ORT's CUDA GroupQueryAttention takes float16 or bfloat16 only)",
            DefaultValueFactory = _ => "float32",
        };
        var targets = new Option<bool>("--targets")
        {
            Description = "only the issue's four targets (decode B1 and B64 H32 d128, bfloat16 prefill B4 H16 T4096 d128, faster than com.microsoft.LinearAttention), one TARGET line each; for --ep cuda",
        };
        var command = new Command("bench-ops", "Time our operators against ONNX Runtime's on the same inputs; report the machine's limits; write CSV and plots.") { output, threads, quick, ops, forms, rounds, quantile, phase, ep, type, targets };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var target = ExecutionTarget.Parse(parse.GetValue(ep)!);
            if (target.IsCuda && parse.GetValue(forms)) throw new ArgumentException("--forms times CPU kernel forms; it takes no --ep cuda");
            CudaBuild.Require(target);
            BoundModel.Target = target;
            BoundModel.Activations = parse.GetValue(type) switch
            {
                "float32" => TensorProto.Types.DataType.Float,
                "float16" or "bfloat16" when parse.GetValue(forms) => throw new ArgumentException($"--forms times float32 kernel forms; it takes no --type {parse.GetValue(type)}"),
                "float16" => TensorProto.Types.DataType.Float16,
                "bfloat16" => TensorProto.Types.DataType.Bfloat16,
                var other => throw new ArgumentException($"--type '{other}' is not a bench type: float32, float16 or bfloat16"),
            };
            if (parse.GetValue(targets))
            {
                if (parse.GetValue(forms)) throw new ArgumentException("--targets runs its own four cases; it takes no --forms");
                if (BoundModel.Activations != TensorProto.Types.DataType.Float) throw new ArgumentException("--targets sets each case's type itself; it takes no --type");
                return DeviceTargets.Run(parse.GetValue(output)!, target, parse.GetValue(threads));
            }
            var typeName = parse.GetValue(type);
            if (BoundModel.Activations != TensorProto.Types.DataType.Float) Console.WriteLine($"activations: {typeName} in every timed model (our states float32; ORT's contrib operators {typeName} throughout)");
            else if (target.IsCuda) Console.WriteLine("activations: float32; ORT 1.32's CUDA provider has no float32 GroupQueryAttention, so those rows run it on ORT's CPU provider (use --type float16)");
            if (target.IsCuda)
            {
                Console.WriteLine($"execution provider: {target}; every timed session runs there on device-resident inputs. " +
                                  "The machine limits and the fractions of them below are this machine's CPU figures.");
            }
            return parse.GetValue(forms)
                ? RunForms(parse.GetValue(output)!, parse.GetValue(threads), parse.GetValue(quick), parse.GetValue(rounds), parse.GetValue(quantile), parse.GetValue(phase))
                : Run(parse.GetValue(output)!, parse.GetValue(threads), parse.GetValue(quick), ParseGroups(parse.GetValue(ops)!));
        }));
        return command;
    }

    private static BenchModels.Shape[] LinearShapes(bool quick) => quick
        ? [new BenchModels.Shape(1, 1, 16, 16, 64)]
        : (from b in new[] { 1, 8 } from h in new[] { 16, 32 } from d in new[] { 64, 128 } select new BenchModels.Shape(b, 1, h, h, d)).ToArray();

    private static int RunForms(DirectoryInfo outDir, int threads, bool quick, int rounds, double quantile, string? phase)
    {
        outDir.Create();
        var bandwidth = MachineLimits.MemoryBandwidthBytesPerSecond(quick ? 64 : 256);
        var shapes = LinearShapes(quick);
        if (phase == "recurrent")
        {
            var recurrent = RecurrentForms.Run(quick, threads, rounds, quick ? 0.05 : 0.2, quantile);
            LinearForms.Print(recurrent, rounds, quantile);
            var path = Path.Combine(outDir.FullName, "bench-forms-recurrent.csv");
            File.WriteAllLines(path, LinearForms.Csv(recurrent));
            AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(path)}[/]");
            return 0;
        }
        var rows = phase == "window" ? [] : LinearForms.Run(shapes, quick ? 64 : 256, threads, rounds, quick ? 0.05 : 0.2, bandwidth, quantile, phase);
        if (phase is null or "window")
        {
            rows.AddRange(LinearForms.Window(quick, threads, rounds, quick ? 0.05 : 0.2, quantile));
        }
        AnsiConsole.MarkupLine($"memory bandwidth (copy, all cores): {bandwidth / 1e9:F1} GB/s; {Environment.ProcessorCount} cores");
        LinearForms.Print(rows, rounds, quantile);
        var csv = Path.Combine(outDir.FullName, "bench-forms.csv");
        File.WriteAllLines(csv, LinearForms.Csv(rows));
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(csv)}[/]");
        return 0;
    }

    private static HashSet<string> ParseGroups(string text)
    {
        var groups = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(g => g.ToLowerInvariant()).ToHashSet();
        var unknown = groups.Except(Groups).ToList();
        if (unknown.Count > 0)
        {
            throw new ArgumentException($"unknown --ops group(s) {string.Join(", ", unknown)}; expected some of {string.Join(", ", Groups)}");
        }
        return groups;
    }

    private static int Run(DirectoryInfo outDir, int threads, bool quick, HashSet<string> groups)
    {
        outDir.Create();
        var rows = new List<Row>();
        double bandwidth = 0, matmul = 0;
        var limits = new List<(string, string)>();

        AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn()).Start(ctx =>
        {
            var machine = ctx.AddTask("machine limits", maxValue: 2);
            bandwidth = MachineLimits.MemoryBandwidthBytesPerSecond(quick ? 64 : 256);
            machine.Increment(1);
            matmul = MachineLimits.OrtMatMulFlops(quick ? 256 : 1024, quick ? 256 : 1024, quick ? 256 : 1024, threads);
            machine.Increment(1);

            var shapes = LinearShapes(quick);
            var prefillLength = quick ? 64 : 256;
            if (groups.Contains("linear"))
            {
                var linear = ctx.AddTask("LinearAttention vs com.microsoft.LinearAttention", maxValue: shapes.Length * 2);
                foreach (var s in shapes)
                {
                    foreach (var seq in new[] { 1, prefillLength })
                    {
                        var shape = s with { Seq = seq };
                        var name = $"B{shape.Batch} H{shape.QHeads} d{shape.HeadDim}";
                        var stateBytes = 2.0 * shape.Batch * shape.KvHeads * shape.HeadDim * shape.HeadDim * sizeof(float);
                        using (var ours = Bound(BenchModels.OurLinear(shape, ortCompatible: true), threads))
                        using (var peer = Bound(BenchModels.OrtLinear(shape), threads))
                        {
                            var r = SideBySide.Run([new("ours", ours), new("peer", peer)], PairRounds, 0.4 / PairRounds);
                            double oursUs = r.MedianMicroseconds(0), peerUs = r.MedianMicroseconds(1);
                            var flops = 2.0 * shape.Batch * seq * (shape.KvHeads + shape.QHeads) * shape.HeadDim * shape.HeadDim;
                            var note = seq == 1
                                ? $"state traffic {stateBytes / (oursUs * 1e-6) / 1e9:F1} GB/s = {stateBytes / (oursUs * 1e-6) / bandwidth:P0} of measured bandwidth"
                                : $"{flops / (oursUs * 1e-6) / 1e9:F1} GFLOP/s = {flops / (oursUs * 1e-6) / matmul:P0} of ORT MatMul";
                            rows.Add(new Row(seq == 1 ? "decode" : $"prefill T={seq}", name, "LinearAttention (ORT-compatible mode)", oursUs,
                                "com.microsoft.LinearAttention", peerUs, note, r.Speedup(0, 1)));
                        }
                        if (seq == 1)
                        {
                            // One buffer bound as past and present state for both, as a decoder host does (no state copy per step).
                            using var ours = Bound(BenchModels.OurLinear(shape, ortCompatible: true), threads, new() { ["s_out"] = "s", ["z_out"] = "z" });
                            using var peer = Bound(BenchModels.OrtLinear(shape), threads, new() { ["s_out"] = "s" });
                            var r = SideBySide.Run([new("ours", ours), new("peer", peer)], PairRounds, 0.4 / PairRounds);
                            double oursUs = r.MedianMicroseconds(0), peerUs = r.MedianMicroseconds(1);
                            rows.Add(new Row("decode in place", name, "LinearAttention, state bound in place", oursUs,
                                "com.microsoft.LinearAttention, state bound in place", peerUs,
                                MachineLimits.StateTraffic(stateBytes, oursUs, bandwidth, threads),
                                r.Speedup(0, 1)));
                        }
                        linear.Increment(1);
                    }
                }
            }

            var d64 = new BenchModels.Shape(1, 1, 16, 16, 64);
            if (groups.Contains("context"))
            {
                var contexts = quick ? new[] { 1024 } : new[] { 1024, 4096, 16384, 32768 };
                var decode = ctx.AddTask("decode vs context: ours vs GroupQueryAttention + KV cache", maxValue: contexts.Length);
                var oursDecode = TimeOurs(d64, ortCompatible: false, threads);
                foreach (var n in contexts)
                {
                    var gqa = TimeGqa(d64, n, -1, threads);
                    rows.Add(new Row("decode vs context", $"B1 H16 d64 context {n}", "LinearAttention elu+1 normalised (state)", oursDecode, "GroupQueryAttention (KV cache)", gqa,
                        $"KV cache {2.0 * n * 16 * 64 * 4 / 1e6:F1} MB vs state {16.0 * 64 * 65 * 4 / 1e6:F2} MB"));
                    decode.Increment(1);
                }
            }

            if (groups.Contains("window"))
            {
                var windows = quick ? new[] { 256 } : new[] { 256, 1024, 4096 };
                var windowTask = ctx.AddTask("window decode: WindowAttention vs GroupQueryAttention local_window_size", maxValue: windows.Length);
                const int position = 16384;
                foreach (var w in windows)
                {
                    // Both caches bound in place (past = present buffer), as GQA's is: a decode step moves one token's rows.
                    using var ours = Bound(BenchModels.OurWindowDecode(d64, w, position), threads, new() { ["kc_out"] = "kc", ["vc_out"] = "vc" });
                    var (gqaModel, gqaInputs, gqaOutputs, gqaShared) = BenchModels.OrtGqaDecode(d64, position, w);
                    using var gqa = new BoundModel(gqaModel, gqaInputs, gqaOutputs, threads, gqaShared);
                    var r = SideBySide.Run([new("ours", ours), new("gqa", gqa)], PairRounds, 0.4 / PairRounds);
                    rows.Add(new Row("window decode", $"B1 H16 d64 W={w} at position {position}", "WindowAttention (ring cache of W, in place)", r.MedianMicroseconds(0),
                        "GroupQueryAttention local_window_size (cache of all tokens)", r.MedianMicroseconds(1),
                        $"cache {2.0 * w * 16 * 64 * 4 / 1e6:F1} MB vs {2.0 * (position + 1) * 16 * 64 * 4 / 1e6:F1} MB", r.Speedup(0, 1)));
                    windowTask.Increment(1);
                }
            }

            var config = new RecurrentBench.Config(groups.Contains("summary"), groups.Contains("hybrid"), groups.Contains("segment"),
                quick ? 1024 : 16384, prefillLength, PairRounds, 0.4 / PairRounds);
            if (config.Summary || config.Hybrid || config.Segment)
            {
                var recurrent = ctx.AddTask("Summary/Hybrid/SegmentAttention vs GroupQueryAttention", maxValue: shapes.Length * 2);
                foreach (var s in shapes)
                {
                    foreach (var l in RecurrentBench.Decode(s, config, threads, bandwidth))
                    {
                        rows.Add(new Row(l.Section, l.Case, l.Ours, l.OursUs, l.Peer, l.PeerUs, l.Note, l.Paired));
                    }
                    recurrent.Increment(1);
                    foreach (var l in RecurrentBench.Prefill(s, config, threads, matmul))
                    {
                        rows.Add(new Row(l.Section, l.Case, l.Ours, l.OursUs, l.Peer, l.PeerUs, l.Note, l.Paired));
                    }
                    recurrent.Increment(1);
                }
            }
        });

        limits.Add(("memory bandwidth (copy, all cores)", $"{bandwidth / 1e9:F1} GB/s"));
        limits.Add(("ORT MatMul float32", $"{matmul / 1e9:F1} GFLOP/s"));
        Print(rows, limits);
        var csv = Path.Combine(outDir.FullName, "bench-ops.csv");
        File.WriteAllLines(csv, new[] { "section,case,ours,ours_us,peer,peer_us,speedup,note" }
            .Concat(rows.Select(r => CsvText.Line(r.Section, r.Case, r.Ours, F(r.OursUs), r.Peer, F(r.PeerUs), F(r.Speedup), r.Note))));
        var decodeRows = rows.Where(r => r.Section == "decode vs context").ToList();
        if (decodeRows.Count > 1)
        {
            var x = decodeRows.Select(r => double.Parse(r.Case.Split(' ').Last(), CultureInfo.InvariantCulture)).ToArray();
            LineChart.Save(Path.Combine(outDir.FullName, "decode-vs-context.png"), "Decode step time vs context (CPU)", "context tokens", "microseconds per step",
                [new("ours: LinearAttention state", x, decodeRows.Select(r => r.OursUs).ToArray()), new("ORT GroupQueryAttention + KV cache", x, decodeRows.Select(r => r.PeerUs).ToArray())], logX: true, logY: true);
        }
        var linearRows = rows.Where(r => r.Peer.StartsWith("com.microsoft.LinearAttention", StringComparison.Ordinal)).ToList();
        if (linearRows.Count > 0)
        {
            var cases = linearRows.Where(r => r.Section == "decode").Select(r => r.Case).ToList();
            Reporting.BarChart.Save(Path.Combine(outDir.FullName, "speedup-vs-ort-linear.png"), "Speed-up over com.microsoft.LinearAttention (CPU, >1 = ours faster)", "ORT time / our time", cases,
                [new("decode", cases.Select(c => linearRows.First(r => r.Section == "decode" && r.Case == c).Speedup).ToArray()),
                 new("decode in place", cases.Select(c => linearRows.First(r => r.Section == "decode in place" && r.Case == c).Speedup).ToArray()),
                 new("prefill", cases.Select(c => linearRows.First(r => r.Section.StartsWith("prefill", StringComparison.Ordinal) && r.Case == c).Speedup).ToArray())],
                referenceLine: 1.0);
        }
        AnsiConsole.MarkupLine($"wrote [bold]{Markup.Escape(csv)}[/] and plots in {Markup.Escape(outDir.FullName)}");
        return 0;
    }

    private static BoundModel Bound((Graphs.Onnx.ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) m,
        int threads, Dictionary<string, string>? shared = null) => new(m.Model, m.Inputs, m.Outputs, threads, shared);

    private static double TimeOurs(BenchModels.Shape s, bool ortCompatible, int threads)
    {
        var (model, inputs, outputs) = BenchModels.OurLinear(s, ortCompatible);
        using var bound = new BoundModel(model, inputs, outputs, threads);
        return Timing.MedianMicroseconds(bound.Run);
    }

    private static double TimeOrtLinear(BenchModels.Shape s, int threads)
    {
        var (model, inputs, outputs) = BenchModels.OrtLinear(s);
        using var bound = new BoundModel(model, inputs, outputs, threads);
        return Timing.MedianMicroseconds(bound.Run);
    }

    private static double TimeGqa(BenchModels.Shape s, int context, int window, int threads)
    {
        var (model, inputs, outputs, shared) = BenchModels.OrtGqaDecode(s, context, window);
        using var bound = new BoundModel(model, inputs, outputs, threads, shared);
        return Timing.MedianMicroseconds(bound.Run);
    }

    private static void Print(List<Row> rows, List<(string, string)> limits)
    {
        var machine = new Table().Title("machine (measured in this run)").AddColumns("limit", "value");
        foreach (var (k, v) in limits) machine.AddRow(k, v);
        AnsiConsole.Write(machine);
        var table = new Table().Title($"operators, median time per call ({Environment.ProcessorCount} cores)")
            .AddColumns("section", "case", "ours", "ours µs", "peer", "peer µs", "speed-up", "note");
        foreach (var r in rows)
        {
            // Without the operator's name, the Summary, Hybrid and Segment rows of a section read the same.
            table.AddRow(Markup.Escape(r.Section), Markup.Escape(r.Case), Markup.Escape(r.Ours), r.OursUs.ToString("F1", CultureInfo.InvariantCulture), Markup.Escape(r.Peer),
                r.PeerUs.ToString("F1", CultureInfo.InvariantCulture), $"{r.Speedup:F2}x", Markup.Escape(r.Note));
        }
        AnsiConsole.Write(table);
    }

    private static string F(double v) => CsvText.Number(v);
}
