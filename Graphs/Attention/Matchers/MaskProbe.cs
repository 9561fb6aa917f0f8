using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using DataType = OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType;

namespace OnnxAttention.Graphs.Attention.Matchers;

/// <summary>
/// Works out what a mask computed at run time amounts to by running it: the scores that reach the softmax are
/// evaluated with the score MatMul's output set to zero (so what is left is the mask alone, however the exporter
/// wrote it: an additive 4-D mask built with ScatterND, a Where over a causal bias buffer, (1 - mask) * min, ...),
/// for a few batches, past lengths and attention_mask patterns (left and right padding). The verdict says whether
/// it is exactly causal attention with the past, and whether the keys an attention_mask marks 0 are removed.
/// Nothing is assumed from node names or op sequences, so other exports of the same masks are taken as well.
/// </summary>
public static class MaskProbe
{
    public enum Verdict
    {
        /// <summary>The mask could not be evaluated or is something else.</summary>
        Unknown,

        /// <summary>Plain causal attention over past + new tokens.</summary>
        Causal,

        /// <summary>Causal, and keys whose attention_mask is 0 are removed (padding).</summary>
        CausalKeyPadding,
    }

    public sealed record Outcome(Verdict Verdict, string? PaddingInput);

    private static readonly Outcome Unknown = new(Verdict.Unknown, null);

    /// <param name="scores">The softmax input.</param>
    /// <param name="rawScores">The score MatMul's output (Q·K^T before scale and mask).</param>
    public static Outcome Run(Graph g, ValueShapes shapes, string scores, string rawScores)
    {
        var inputs = DataInputs(g, scores, rawScores);
        if (inputs.Count > 1) return Unknown;
        var mask = inputs.Count == 1 ? inputs[0] : null;
        if (mask is not null && g.Inputs.First(i => i.Name == mask).Type?.TensorType?.Shape?.Dim.Count != 2) return Unknown;

        // Whole prompt, a continuation after a past, and a padded batch (left padding in row 0, right in row 1,
        // the pads reaching into the past and into the new tokens).
        var cases = new List<(int B, int P, int S, long[]? Mask)>
        {
            (2, 0, 4, null),
            (2, 3, 2, null),
        };
        if (mask is not null) cases.Add((2, 2, 3, [0, 0, 0, 1, 1, 1, 1, 1, 1, 0]));
        foreach (var (b, p, s, m) in cases)
        {
            var values = m ?? Enumerable.Repeat(1L, b * (p + s)).ToArray();
            if (Evaluate(g, shapes, scores, rawScores, mask, b, p, s, values) is not { } t) return Unknown;
            if (!Matches(t, b, p, s, mask is null ? null : values)) return Unknown;
        }
        // Longer sequences, so that a local window or a mask that changes with the length (a sliding window written
        // as a band, say) is not taken for causal. A model that cannot take these lengths (a position table of 256,
        // say) fails to evaluate them, which says nothing about its mask: only a mask that evaluates and differs
        // from causal counts against it. A band wider than the longest probe still cannot be seen.
        foreach (var (b, p, s) in LongProbes)
        {
            var values = Enumerable.Repeat(1L, b * (p + s)).ToArray();
            if (Evaluate(g, shapes, scores, rawScores, mask, b, p, s, values) is { } t && !Matches(t, b, p, s, mask is null ? null : values)) return Unknown;
        }
        return mask is null ? new(Verdict.Causal, null) : new(Verdict.CausalKeyPadding, mask);
    }

    /// <summary>A prefill of 48 tokens and a decode step after 300.</summary>
    private static readonly (int B, int P, int S)[] LongProbes = [(1, 0, 48), (1, 300, 1)];

    /// <summary>
    /// Whether GroupQueryAttention's seqlens_k is each row's count of mask ones minus 1 and total_sequence_length the
    /// mask's length, as onnxruntime-genai computes them from an attention_mask (ReduceSum - 1, Shape[1]): then the
    /// operator reads the first seqlens_k + 1 keys of a row, which removes the pads of a right-padded row.
    /// </summary>
    public static bool RowLengthsFromMask(Graph g, ValueShapes shapes, string seqlens, string total, string mask)
    {
        foreach (var (b, p, s, values) in new (int, int, int, long[])[] { (2, 0, 4, [1, 1, 1, 1, 1, 1, 0, 0]), (2, 3, 2, [1, 1, 1, 1, 0, 1, 1, 0, 0, 0]) })
        {
            if (ProbeInputs.Bind(g, b, p, s, mask, values) is not { } bound) return false;
            var eval = new StaticEvaluator(g, shapes, bound);
            if (eval.Value(seqlens) is not { } lengths || lengths.Data.Length != b) return false;
            for (var row = 0; row < b; row++)
            {
                if (lengths.Data[row] != values.Skip(row * (p + s)).Take(p + s).Sum() - 1) return false;
            }
            if (total.Length > 0 && (!eval.TryScalar(total, out var t) || t != p + s)) return false;
        }
        return true;
    }

    /// <summary>Graph inputs whose values reach <paramref name="scores"/> other than through the score MatMul.</summary>
    private static List<string> DataInputs(Graph g, string scores, string rawScores)
    {
        var found = new HashSet<string>();
        var pending = new Stack<string>([scores]);
        var seen = new HashSet<string>();
        while (pending.Count > 0)
        {
            var v = pending.Pop();
            if (!seen.Add(v) || v == rawScores) continue;
            if (g.IsGraphInput(v)) found.Add(v);
            var p = g.Producer(v);
            if (p is null || p.Is("Shape") || p.Is("Size")) continue;
            foreach (var input in p.Inputs.Where(i => i.Length > 0)) pending.Push(input);
        }
        return [.. found];
    }

    private static StaticTensor? Evaluate(Graph g, ValueShapes shapes, string scores, string rawScores, string? mask, int b, int p, int s, long[] maskValues)
    {
        if (ProbeInputs.Bind(g, b, p, s, mask, maskValues) is not { } bound) return null;
        var first = new StaticEvaluator(g, shapes, bound);
        if (first.Shape(rawScores) is not { } rawShape || rawShape.Any(d => d is null)) return null;
        var zeros = rawShape.Select(d => d!.Value).ToArray();
        if (StaticTensor.Count(zeros) > StaticEvaluator.MaxElements) return null;
        var rawType = first.ElementType(rawScores);
        bound[rawScores] = new StaticTensor(rawType == DataType.Undefined ? DataType.Float : rawType, zeros, new double[StaticTensor.Count(zeros)]);
        return new StaticEvaluator(g, shapes, bound).Value(scores);
    }

    /// <summary>0 where query i (at p + i) may see key j, very negative elsewhere; rows of pad queries are not looked at.</summary>
    private static bool Matches(StaticTensor t, int b, int p, int s, long[]? mask)
    {
        var total = p + s;
        if (t.Rank != 4 || t.Shape[^2] != s || t.Shape[^1] != total || (t.Shape[0] != 1 && t.Shape[0] != b)) return false;
        foreach (var index in StaticTensor.Indices([b, t.Shape[1], s, total]))
        {
            var (row, i, j) = (index[0], index[2], index[3]);
            if (mask is not null && mask[row * total + p + i] == 0) continue;
            var allowed = j <= p + i && (mask is null || mask[row * total + j] != 0);
            var x = t.AtBroadcast(index);
            if (allowed ? Math.Abs(x) > 1e-3 : !(x <= MaskMatcher.MaskedBelow)) return false;
        }
        return true;
    }
}
