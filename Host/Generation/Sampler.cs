namespace OnnxAttention.Host.Generation;

/// <summary>Chooses tokens from logits; reuses its scratch buffers, so sampling allocates nothing per token.</summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private readonly Random _random;
    private readonly float[] _probabilities;
    private readonly int[] _order;

    public Sampler(SamplingOptions options, int vocab)
    {
        options.Validate();
        _options = options;
        _random = new Random(options.Seed);
        _probabilities = new float[vocab];
        _order = new int[vocab];
    }

    public int Next(ReadOnlySpan<float> logits)
    {
        if (_options.Temperature == 0f) return ArgMax(logits);

        var max = float.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        var p = _probabilities.AsSpan(0, logits.Length);
        var sum = 0.0;
        for (var i = 0; i < p.Length; i++) sum += p[i] = MathF.Exp((logits[i] - max) / _options.Temperature);

        var order = _order.AsSpan(0, logits.Length);
        for (var i = 0; i < order.Length; i++) order[i] = i;
        var count = order.Length;
        if (_options.TopK > 0 || _options.TopP < 1f)
        {
            // Most likely first; ties keep the lower token id first so runs are repeatable.
            var probabilities = _probabilities;
            order.Sort((a, b) => probabilities[b] != probabilities[a] ? probabilities[b].CompareTo(probabilities[a]) : a.CompareTo(b));
            if (_options.TopK > 0) count = Math.Min(count, _options.TopK);
            if (_options.TopP < 1f)
            {
                var cumulative = 0.0;
                for (var i = 0; i < count; i++)
                {
                    cumulative += p[order[i]] / sum;
                    if (cumulative >= _options.TopP)
                    {
                        count = i + 1;
                        break;
                    }
                }
            }
            sum = 0;
            for (var i = 0; i < count; i++) sum += p[order[i]];
        }
        var target = _random.NextDouble() * sum;
        var acc = 0.0;
        for (var i = 0; i < count; i++)
        {
            acc += p[order[i]];
            if (target < acc) return order[i];
        }
        return order[count - 1];
    }

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        var best = 0;
        for (var i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best]) best = i;
        }
        return best;
    }
}
