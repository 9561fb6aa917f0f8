using System.Globalization;
using OnnxAttention.Cli.Reporting;
using OnnxAttention.KernelForms;
using Spectre.Console;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// <c>bench-ops --forms</c>: each of our kernel forms next to ONNX Runtime's peer, timed in interleaved rounds in one
/// process. LinearAttention against com.microsoft.LinearAttention: prefill per token vs token blocks vs chunks;
/// decode with the state copied from past to present vs bound in place (one buffer as both). WindowAttention prefill
/// per token vs blocks against GroupQueryAttention with local_window_size.
/// </summary>
public static class LinearForms
{
    public sealed record Row(string Phase, string Case, SideBySide.Result Result, string Note);

    public static List<Row> Run(IReadOnlyList<BenchModels.Shape> shapes, int prefillLength, int threads, int rounds, double budgetSeconds,
        double bandwidth, double quantile, string? phase = null)
    {
        var rows = new List<Row>();
        foreach (var s in shapes)
        {
            var decode = s with { Seq = 1 };
            if (phase is null or "decode")
                using (var ort = Bound(BenchModels.OrtLinear(decode), threads))
                using (var ortInPlace = Bound(BenchModels.OrtLinear(decode), threads, InPlace(ort: true)))
                using (var ours = Bound(BenchModels.OurLinear(decode, ortCompatible: true), threads))
                using (var oursInPlace = Bound(BenchModels.OurLinear(decode, ortCompatible: true), threads, InPlace(ort: false)))
                {
                    var result = SideBySide.Run([new("ORT", ort), new("ORT in place", ortInPlace), new("ours", ours), new("ours in place", oursInPlace)], rounds, budgetSeconds, quantile);
                    // In place, a step reads the state and writes it back once (read + write bytes).
                    var stateBytes = 2.0 * s.Batch * s.KvHeads * s.HeadDim * s.HeadDim * sizeof(float);
                    rows.Add(new Row("decode", Name(s), result, "in place: " + MachineLimits.StateTraffic(stateBytes, result.MedianMicroseconds(3), bandwidth, threads)));
                }

            var prefill = s with { Seq = prefillLength };
            var forms = new KernelFormSwitch();
            if (phase is null or "prefill")
                using (var ort = Bound(BenchModels.OrtLinear(prefill), threads))
                using (var ours = Bound(BenchModels.OurLinear(prefill, ortCompatible: true), threads, forms: forms))
                {
                    var result = SideBySide.Run(
                    [
                        new("ORT", ort),
                    new("ours per token", ours, () => forms.Linear = LinearForm.PerToken, forms.Reset),
                    new("ours token blocks", ours, () => forms.Linear = LinearForm.TokenBlocks, forms.Reset),
                    new("ours chunked (GEMM)", ours, () => forms.Linear = LinearForm.Chunked, forms.Reset),
                    new("ours auto", ours),
                ], rounds, budgetSeconds, quantile);
                    var flops = 2.0 * prefill.Batch * prefillLength * (prefill.KvHeads + prefill.QHeads) * prefill.HeadDim * prefill.HeadDim;
                    rows.Add(new Row($"prefill T={prefillLength}", Name(s), result,
                        $"auto: {flops / (result.MedianMicroseconds(4) * 1e-6) / 1e9:F1} GFLOP/s (2 FMA per state element per token)"));
                }
        }
        return rows;
    }

    /// <summary>WindowAttention prefill from an empty cache, B1 H16 d64, over call lengths and windows.</summary>
    public static List<Row> Window(bool quick, int threads, int rounds, double budgetSeconds, double quantile)
    {
        var rows = new List<Row>();
        var grid = quick ? [(64, 256)] : new[] { (64, 1024), (128, 256), (128, 1024), (256, 128), (256, 256), (256, 512), (1024, 128), (1024, 256), (1024, 1024), (1024, 4096) };
        foreach (var (t, w) in grid)
        {
            var s = new BenchModels.Shape(1, t, 16, 16, 64);
            using var gqa = Bound(BenchModels.OrtGqaPrefill(s, w), threads);
            var forms = new KernelFormSwitch();
            using var ours = Bound(BenchModels.OurWindowPrefill(s, w), threads, forms: forms);
            var result = SideBySide.Run(
            [
                new("GroupQueryAttention local_window_size", gqa),
                new("ours per token", ours, () => forms.Window = WindowForm.PerToken, forms.Reset),
                new("ours blocks", ours, () => forms.Window = WindowForm.Blocks, forms.Reset),
                new("ours auto", ours),
            ], rounds, budgetSeconds, quantile);
            rows.Add(new Row("window prefill", $"B1 H16 d64 T={t} W={w}", result, ""));
        }
        return rows;
    }

    public static void Print(IReadOnlyList<Row> rows, int rounds, double quantile)
    {
        var table = new Table().Title($"Kernel forms side by side ({rounds} interleaved rounds, each the {quantile:P0} quantile of its calls; µs: median over rounds; speed-up: median over rounds of ORT time / ours)")
            .AddColumns("phase", "case", "contender", "µs", "speed-up vs the first", "note");
        foreach (var row in rows)
        {
            for (var c = 0; c < row.Result.Names.Count; c++)
            {
                table.AddRow(c == 0 ? Markup.Escape(row.Phase) : "", c == 0 ? row.Case : "", Markup.Escape(row.Result.Names[c]),
                    row.Result.MedianMicroseconds(c).ToString("F1", CultureInfo.InvariantCulture),
                    c == 0 ? "" : $"{row.Result.Speedup(c, 0):F2}x", c == 0 ? Markup.Escape(row.Note) : "");
            }
        }
        AnsiConsole.Write(table);
    }

    public static IEnumerable<string> Csv(IReadOnlyList<Row> rows) =>
        new[] { "phase,case,contender,us,speedup_vs_first" }.Concat(rows.SelectMany(row => row.Result.Names.Select((name, c) =>
            CsvText.Line(row.Phase, row.Case, name, CsvText.Number(row.Result.MedianMicroseconds(c)),
                row.Result.Speedup(c, 0).ToString("G4", CultureInfo.InvariantCulture)))));

    private static string Name(BenchModels.Shape s) => $"B{s.Batch} H{s.QHeads} d{s.HeadDim}";

    private static Dictionary<string, string> InPlace(bool ort) =>
        ort ? new() { ["s_out"] = "s" } : new() { ["s_out"] = "s", ["z_out"] = "z" };

    private static BoundModel Bound((Graphs.Onnx.ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) m,
        int threads, Dictionary<string, string>? shared = null, KernelFormSwitch? forms = null) =>
        new(m.Model, m.Inputs, m.Outputs, threads, shared, forms);
}
