using OnnxAttention.Graphs.Attention;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Host.Quality;

/// <summary>
/// One attention layer of the original model on calibration ids, head-major: query [rows, Hq, T, d], key and value
/// [rows, Hkv, T, d] (before any repeat of grouped heads), and the softmax attention's output [rows, Hq, T, dv],
/// exactly the tensors the swap's replacement reads and stands in for.
/// </summary>
public sealed record LayerAttention(int Rows, int Length, int QueryHeads, int KvHeads, int HeadDim, int ValueHeadDim, double Scale,
    float[] Query, float[] Key, float[] Value, float[] Output)
{
    public int GroupSize => QueryHeads / KvHeads;
}

/// <summary>
/// Reads every attention layer's query, key, value and output from teacher-forced runs of the original model: the model
/// swapped with the softmax rule (whose logits equal the original's, see docs/softmax-rule.md) computes each layer with one
/// ONNX Attention node, whose inputs and output become extra graph outputs. Fitting replacements needs them.
/// </summary>
public static class AttentionTap
{
    public static IReadOnlyList<LayerAttention> Capture(QualityModel quality, long[] ids, int rows)
    {
        if (rows <= 0 || ids.Length % rows != 0) throw new ArgumentException($"{ids.Length} ids do not split into {rows} rows");
        var (model, report) = quality.Swap(new SoftmaxRule());
        var taps = new List<(AttentionMatch Match, bool Packed, string[] Names)>();
        for (var l = 0; l < report.Layers.Count; l++)
        {
            var m = report.Replaced[l];
            if (m.Softcap > 0 || m.MaskValue is not null || m.MaskKeep is not null || !m.Causal)
            {
                throw new ArgumentException($"{m.Anchor}: fitting handles plain causal attention only ({m.Describe()})");
            }
            var node = model.Graph.Node.FirstOrDefault(n => n.OpType == "Attention" && n.Name == $"layers.{l}.attention.Attention")
                ?? throw new InvalidOperationException($"the softmax swap wrote no Attention node for layer {l}");
            taps.Add((m, node.Attribute.Any(a => a.Name == "q_num_heads"), [node.Input[0], node.Input[1], node.Input[2], node.Output[0]]));
        }
        foreach (var name in taps.SelectMany(t => t.Names).Distinct())
        {
            model.Graph.Output.Add(new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float } },
            });
        }

        var seq = ids.Length / rows;
        using var runner = new SwappedModelRunner(model, quality.IntraOpThreads);
        var read = taps.SelectMany(t => t.Names).Distinct().ToDictionary(n => n, _ => new List<float>());
        // A few rows per run: the softmax scores are [rows, heads, T, T] per layer.
        for (var start = 0; start < rows; start += RowsPerRun)
        {
            var n = Math.Min(RowsPerRun, rows - start);
            foreach (var (name, values) in read)
            {
                values.AddRange(runner.Output(name, ids[(start * seq)..((start + n) * seq)], n, seq));
            }
        }
        return taps.Select(t =>
        {
            var (m, layout) = (t.Match, t.Packed ? KeyLayout.Packed : KeyLayout.Bhsd);
            return new LayerAttention(rows, seq, m.QueryHeads, m.KvHeads, m.HeadDim, m.ValueHeadDim, m.EffectiveScale,
                HeadMajor(read[t.Names[0]], layout, rows, m.QueryHeads, seq, m.HeadDim),
                HeadMajor(read[t.Names[1]], layout, rows, m.KvHeads, seq, m.HeadDim),
                HeadMajor(read[t.Names[2]], layout, rows, m.KvHeads, seq, m.ValueHeadDim),
                HeadMajor(read[t.Names[3]], layout, rows, m.QueryHeads, seq, m.ValueHeadDim));
        }).ToList();
    }
    private const int RowsPerRun = 4;

    /// <summary>[rows, H, T, d] from any of the layouts a match describes.</summary>
    private static float[] HeadMajor(List<float> data, KeyLayout layout, int rows, int heads, int seq, int dim)
    {
        var expected = (long)rows * heads * seq * dim;
        if (data.Count != expected) throw new ArgumentException($"an attention tensor holds {data.Count} values, expected {expected} ([{rows}, {heads}, {seq}, {dim}])");
        var source = data.ToArray();
        if (layout == KeyLayout.Bhsd) return source;
        // Bshd and packed [B, T, H*d] hold the same order.
        var result = new float[source.Length];
        for (var b = 0; b < rows; b++)
        {
            for (var t = 0; t < seq; t++)
            {
                for (var h = 0; h < heads; h++)
                {
                    Array.Copy(source, (((long)b * seq + t) * heads + h) * dim, result, (((long)b * heads + h) * seq + t) * dim, dim);
                }
            }
        }
        return result;
    }
}
