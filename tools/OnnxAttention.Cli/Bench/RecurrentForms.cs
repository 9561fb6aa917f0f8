using OnnxAttention.KernelForms;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// <c>bench-ops --forms --phase recurrent</c>: SummaryAttention, HybridAttention and SegmentAttention, their untuned
/// items (one span call per cached row, <see cref="RecurrentForm.Untuned"/>) and the tuned ones, next to ORT's
/// GroupQueryAttention, in interleaved rounds in one process: decode at a long context and prefill from nothing.
/// </summary>
public static class RecurrentForms
{
    public static List<LinearForms.Row> Run(bool quick, int threads, int rounds, double budgetSeconds, double quantile)
    {
        var shapes = quick
            ? [new BenchModels.Shape(1, 1, 16, 16, 64)]
            : new[] { new BenchModels.Shape(1, 1, 16, 16, 64), new BenchModels.Shape(1, 1, 32, 32, 128), new BenchModels.Shape(8, 1, 16, 16, 64), new BenchModels.Shape(8, 1, 32, 32, 128) };
        var context = quick ? 1024 : 16384;
        var prefill = quick ? 64 : 256;
        var rows = new List<LinearForms.Row>();
        foreach (var shape in shapes)
        {
            var d = shape with { Seq = 1 };
            var (gqa, gqaInputs, gqaOutputs, gqaShared) = BenchModels.OrtGqaDecode(d, context);
            var (local, localInputs, localOutputs, localShared) = BenchModels.OrtGqaDecode(d, context, RecurrentModels.HybridWindow,
                (float[])gqaInputs["past_key"].Item1, (float[])gqaInputs["past_value"].Item1);
            using (var full = new BoundModel(gqa, gqaInputs, gqaOutputs, threads, gqaShared))
            using (var windowed = new BoundModel(local, localInputs, localOutputs, threads, localShared))
            {
                rows.Add(Compare("decode", $"summary ema x{RecurrentModels.EmaSlots} at context {context}", d, full, RecurrentModels.Summary(d, context), threads, rounds, budgetSeconds, quantile));
                rows.Add(Compare("decode", $"hybrid W={RecurrentModels.HybridWindow} at context {context} (peer: local window)", d, windowed, RecurrentModels.Hybrid(d, context), threads, rounds, budgetSeconds, quantile));
                rows.Add(Compare("decode", $"segment L={RecurrentModels.SegmentLength} at context {context}+L/2", d, full,
                    RecurrentModels.Segment(d, context + RecurrentModels.SegmentLength / 2), threads, rounds, budgetSeconds, quantile));
            }
            var p = shape with { Seq = prefill };
            using (var full = Bind(BenchModels.OrtGqaPrefill(p, -1), threads))
            using (var windowed = Bind(BenchModels.OrtGqaPrefill(p, RecurrentModels.HybridWindow), threads))
            {
                rows.Add(Compare($"prefill T={prefill}", $"summary ema x{RecurrentModels.EmaSlots}", p, full, RecurrentModels.Summary(p, 0), threads, rounds, budgetSeconds, quantile));
                rows.Add(Compare($"prefill T={prefill}", $"hybrid W={RecurrentModels.HybridWindow} (peer: local window)", p, windowed, RecurrentModels.Hybrid(p, 0), threads, rounds, budgetSeconds, quantile));
                rows.Add(Compare($"prefill T={prefill}", $"segment L={RecurrentModels.SegmentLength}", p, full, RecurrentModels.Segment(p, 0), threads, rounds, budgetSeconds, quantile));
            }
        }
        return rows;
    }

    private static LinearForms.Row Compare(string phase, string what, BenchModels.Shape s, BoundModel peer, RecurrentModels.Bench ours, int threads,
        int rounds, double budgetSeconds, double quantile)
    {
        var forms = new KernelFormSwitch();
        using var model = RecurrentBench.Bind(ours, threads, forms);
        List<SideBySide.Contender> contenders =
        [
            new("GroupQueryAttention", peer),
            new("ours untuned (span per row)", model, () => forms.Recurrent = RecurrentForm.Untuned, forms.Reset),
        ];
        if (s.Seq > 1 && !what.StartsWith("summary", StringComparison.Ordinal))
        {
            // Operators with a blocked prefill: the tuned per-token loop and the blocks apart.
            contenders.Add(new("ours tuned per token", model, () => forms.Recurrent = RecurrentForm.PerToken, forms.Reset));
            contenders.Add(new("ours tuned blocks", model, () => forms.Recurrent = RecurrentForm.Blocks, forms.Reset));
        }
        contenders.Add(new("ours tuned (auto)", model));
        var result = SideBySide.Run(contenders, rounds, budgetSeconds, quantile);
        return new LinearForms.Row(phase, $"{RecurrentBench.Name(s)} {what}", result, $"tuned (auto) vs untuned: {result.Speedup(contenders.Count - 1, 1):F2}x");
    }

    private static BoundModel Bind((Graphs.Onnx.ModelProto Model, Dictionary<string, (Array, long[])> Inputs, Dictionary<string, (Array, long[])> Outputs) m, int threads) =>
        new(m.Model, m.Inputs, m.Outputs, threads);
}
