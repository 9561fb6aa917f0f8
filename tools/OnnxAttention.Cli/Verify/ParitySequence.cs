namespace OnnxAttention.Cli.Verify;

/// <summary>
/// Seeded inputs for every token a case feeds, [batch, length, width] each: query, key, value and the rule's further
/// per-token inputs, rounded to the activation type so both kernels read the same numbers.
/// </summary>
public sealed class ParitySequence
{
    private readonly List<(string Name, float[] Data, int Width)> _inputs = [];

    public ParitySequence(ParityRule rule, ParityShape shape, ActivationType type, int length, int seed)
    {
        Batch = shape.Batch;
        Length = length;
        var rng = new Random(seed);
        float[] Draw(int width, float low, float high)
        {
            var data = new float[(long)Batch * length * width];
            for (var i = 0; i < data.Length; i++) data[i] = type.Round(low + (high - low) * (float)rng.NextDouble());
            return data;
        }
        _inputs.Add(("query", Draw(shape.QueryWidth, -1f, 1f), shape.QueryWidth));
        _inputs.Add(("key", Draw(shape.KeyWidth, -1f, 1f), shape.KeyWidth));
        _inputs.Add(("value", Draw(shape.ValueWidth, -1f, 1f), shape.ValueWidth));
        foreach (var f in rule.Fed)
        {
            _inputs.Add((f.Name, Draw(f.Width, f.Low, f.High), f.Width));
        }
    }

    public int Batch { get; }

    public int Length { get; }

    /// <summary>Every input's tokens [start, start + count) of every row: (name, data, [batch, count, width]).</summary>
    public IEnumerable<(string Name, float[] Data, long[] Shape)> Slice(int start, int count)
    {
        if (start < 0 || count <= 0 || start + count > Length)
        {
            throw new ArgumentOutOfRangeException(nameof(count), $"tokens [{start}, {start + count}) of {Length}");
        }
        foreach (var (name, data, width) in _inputs)
        {
            var slice = new float[(long)Batch * count * width];
            for (var b = 0; b < Batch; b++)
            {
                Array.Copy(data, ((long)b * Length + start) * width, slice, (long)b * count * width, (long)count * width);
            }
            yield return (name, slice, [Batch, count, width]);
        }
    }
}
