using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Host.Quality;

/// <summary>
/// An unswapped decoder that can be run whole on ids under any rule: the reference is the softmax rule, whose
/// logits equal the unswapped model's (see docs/softmax-rule.md), and every other rule is a fresh swap of a copy.
/// </summary>
public sealed class QualityModel(ModelProto original, int intraOpThreads = 0)
{
    public int IntraOpThreads { get; } = intraOpThreads;

    /// <summary>The fixed vocabulary size the model's logits output declares (last dim of its first output).</summary>
    public static int Vocab(ModelProto model)
    {
        var dims = model.Graph.Output.FirstOrDefault()?.Type?.TensorType?.Shape?.Dim;
        return dims is { Count: > 0 } && dims[^1].HasDimValue ? (int)dims[^1].DimValue
            : throw new ArgumentException("the model's first output does not declare a fixed vocabulary size");
    }

    public ModelProto Original { get; } = ModelContract.IsPresent(original)
        ? throw new ArgumentException("the model to compare against is already swapped; give the unswapped model (.onnx or .bin)")
        : original;

    /// <summary>The model swapped for <paramref name="rule"/> (a copy; the original is kept).</summary>
    public (ModelProto Swapped, SwapReport Report) Swap(AttentionRule rule)
    {
        var copy = Original.Clone();
        var report = AttentionSwapper.Swap(copy, rule);
        return (copy, report);
    }

    /// <summary>Attention layers the swap finds and replaces.</summary>
    public int Layers => Swap(new SoftmaxRule()).Report.Layers.Count;

    /// <summary>Logits [rows, seq, vocab] of the model under <paramref name="rule"/>, the whole sequence in one call.</summary>
    public float[] Logits(AttentionRule rule, long[] ids, int rows) => Run(Swap(rule).Swapped, ids, rows, IntraOpThreads);

    /// <summary>Logits of a model already swapped (a calibrated or converted file).</summary>
    /// <param name="chunk">tokens per call, the state carried from one call to the next (1: token by token, as
    /// generation decodes); 0: the whole sequence in one call</param>
    public static float[] Run(ModelProto swapped, long[] ids, int rows, int intraOpThreads = 0, int chunk = 0)
    {
        if (chunk < 0) throw new ArgumentException($"chunk must be >= 0 (0: the whole sequence), got {chunk}");
        using var runner = new SwappedModelRunner(swapped, intraOpThreads);
        var seq = ids.Length / rows;
        // The softmax reference materialises [rows, heads, seq, seq] scores per layer: a few rows at a time keeps
        // that in the cache instead of gigabytes of memory.
        float[]? all = null;
        for (var start = 0; start < rows; start += RowsPerRun)
        {
            var n = Math.Min(RowsPerRun, rows - start);
            var logits = runner.Logits(ids[(start * seq)..((start + n) * seq)], n, chunk == 0 ? seq : Math.Min(chunk, seq));
            all ??= new float[logits.Length / n * rows];
            logits.CopyTo(all, logits.Length / n * start);
        }
        return all ?? [];
    }

    private const int RowsPerRun = 4;
}
