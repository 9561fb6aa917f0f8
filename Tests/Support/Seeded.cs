namespace OnnxAttention.Tests.Support;

/// <summary>Repeatable random tensors.</summary>
public static class Seeded
{
    public static float[] Uniform(int seed, int count, float low = -1f, float high = 1f)
    {
        var rng = new Random(seed);
        var data = new float[count];
        for (var i = 0; i < count; i++) data[i] = low + (float)rng.NextDouble() * (high - low);
        return data;
    }
}
