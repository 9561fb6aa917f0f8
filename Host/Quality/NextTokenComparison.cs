namespace OnnxAttention.Host.Quality;

/// <summary>
/// Per position (averaged over the rows of a batch), how a model's next-token distributions compare with the
/// original model's on the same ids: KL(original ‖ other), whether both put their maximum on the same token, and
/// the cross-entropy of each against the id that actually follows (the last position has none). Computed in double.
/// </summary>
public sealed class NextTokenComparison
{
    private NextTokenComparison(double[] kl, double[] top1, double[] ceOriginal, double[] ceOther)
    {
        Kl = kl;
        Top1 = top1;
        CrossEntropyOriginal = ceOriginal;
        CrossEntropyOther = ceOther;
    }

    /// <summary>Mean over rows of KL(original ‖ other), nats, per position.</summary>
    public IReadOnlyList<double> Kl { get; }

    /// <summary>Fraction of rows whose argmax agrees with the original's, per position.</summary>
    public IReadOnlyList<double> Top1 { get; }

    /// <summary>Mean over rows of −log p(next id), per position; NaN at the last position (no next id).</summary>
    public IReadOnlyList<double> CrossEntropyOriginal { get; }

    public IReadOnlyList<double> CrossEntropyOther { get; }

    public int Positions => Kl.Count;

    /// <summary>
    /// <paramref name="original"/> and <paramref name="other"/> are logits [rows, seq, vocab]; <paramref name="ids"/>
    /// is [rows, seq].
    /// </summary>
    public static NextTokenComparison Compare(ReadOnlySpan<float> original, ReadOnlySpan<float> other, ReadOnlySpan<long> ids, int rows)
    {
        if (rows <= 0 || ids.Length % rows != 0) throw new ArgumentException($"{ids.Length} ids do not split into {rows} rows");
        var seq = ids.Length / rows;
        if (original.Length != other.Length || seq == 0 || original.Length % (rows * seq) != 0)
        {
            throw new ArgumentException($"logits of {original.Length} and {other.Length} values do not fit [rows {rows}, seq {seq}, vocab]");
        }
        var vocab = original.Length / (rows * seq);
        double[] kl = new double[seq], top1 = new double[seq], ceA = new double[seq], ceB = new double[seq];
        var logP = new double[vocab];
        var logQ = new double[vocab];
        for (var b = 0; b < rows; b++)
        {
            for (var t = 0; t < seq; t++)
            {
                var offset = (b * seq + t) * vocab;
                var argP = LogSoftmax(original.Slice(offset, vocab), logP);
                var argQ = LogSoftmax(other.Slice(offset, vocab), logQ);
                var sum = 0.0;
                for (var v = 0; v < vocab; v++) sum += Math.Exp(logP[v]) * (logP[v] - logQ[v]);
                // Rounding can leave a tiny negative sum for identical distributions; KL is never negative.
                kl[t] += Math.Max(sum, 0);
                if (argP == argQ) top1[t] += 1;
                if (t + 1 < seq)
                {
                    var next = ids[b * seq + t + 1];
                    if (next < 0 || next >= vocab) throw new ArgumentException($"id {next} at row {b}, position {t + 1} is outside the vocabulary [0, {vocab})");
                    ceA[t] -= logP[next];
                    ceB[t] -= logQ[next];
                }
            }
        }
        for (var t = 0; t < seq; t++)
        {
            kl[t] /= rows;
            top1[t] /= rows;
            ceA[t] = t + 1 < seq ? ceA[t] / rows : double.NaN;
            ceB[t] = t + 1 < seq ? ceB[t] / rows : double.NaN;
        }
        return new NextTokenComparison(kl, top1, ceA, ceB);
    }

    /// <summary>Means over positions [<paramref name="from"/>, <paramref name="to"/>) (NaN cross-entropies skipped).</summary>
    public BucketStats Bucket(int from, int to)
    {
        to = Math.Min(to, Positions);
        if (from < 0 || from >= to) throw new ArgumentException($"positions [{from}, {to}) are empty; the ids have {Positions} positions");
        return new BucketStats(from, to, Mean(Kl, from, to), Mean(Top1, from, to), Mean(CrossEntropyOriginal, from, to), Mean(CrossEntropyOther, from, to));
    }

    /// <summary>Consecutive buckets of <paramref name="size"/> positions covering the whole sequence.</summary>
    public IReadOnlyList<BucketStats> Buckets(int size)
    {
        if (size <= 0) throw new ArgumentException($"bucket size must be positive, got {size}");
        var list = new List<BucketStats>();
        for (var from = 0; from < Positions; from += size) list.Add(Bucket(from, from + size));
        return list;
    }

    private static double Mean(IReadOnlyList<double> values, int from, int to)
    {
        double sum = 0;
        var n = 0;
        for (var i = from; i < to; i++)
        {
            if (double.IsNaN(values[i])) continue;
            sum += values[i];
            n++;
        }
        return n == 0 ? double.NaN : sum / n;
    }

    /// <summary>Writes log-softmax of <paramref name="logits"/> into <paramref name="into"/>; returns the argmax (first on ties).</summary>
    private static int LogSoftmax(ReadOnlySpan<float> logits, double[] into)
    {
        var arg = 0;
        for (var v = 1; v < logits.Length; v++)
        {
            if (logits[v] > logits[arg]) arg = v;
        }
        double max = logits[arg], sum = 0;
        for (var v = 0; v < logits.Length; v++) sum += Math.Exp(logits[v] - max);
        var log = max + Math.Log(sum);
        for (var v = 0; v < logits.Length; v++) into[v] = logits[v] - log;
        return arg;
    }
}

/// <summary>Means over positions [From, To): KL(original ‖ other), top-1 agreement, cross-entropy of both (nats).</summary>
public sealed record BucketStats(int From, int To, double Kl, double Top1, double CrossEntropyOriginal, double CrossEntropyOther);
