namespace OnnxAttention.Tests.Reference;

/// <summary>
/// The definition of a state=int8 rule's storage of one key or value vector, written for clarity in double precision
/// with the float16 scale rounded by <see cref="Half"/>: s = half(clip(max|x| / 127, 2^-14, 65504)),
/// q = clip(round_half_even(x / s), -127, 127), stored x' = q * s. The swap's ONNX graph and the training side are
/// tested against this.
/// </summary>
public static class Int8VectorReference
{
    /// <summary>The codes and scale of one vector.</summary>
    public static (int[] Codes, double Scale) Quantise(ReadOnlySpan<float> vector)
    {
        var max = 0.0;
        foreach (var x in vector) max = Math.Max(max, Math.Abs((double)x));
        var scale = (double)(Half)Math.Clamp(max / 127.0, 1.0 / 16384, 65504.0);
        var codes = new int[vector.Length];
        for (var i = 0; i < vector.Length; i++) codes[i] = (int)Math.Clamp(Math.Round(vector[i] / scale, MidpointRounding.ToEven), -127, 127);
        return (codes, scale);
    }

    /// <summary>Every vector of <paramref name="d"/> values of <paramref name="x"/> as stored and given back.</summary>
    public static float[] RoundTrip(float[] x, int d)
    {
        var result = new float[x.Length];
        for (var start = 0; start < x.Length; start += d)
        {
            var (codes, scale) = Quantise(x.AsSpan(start, d));
            for (var i = 0; i < d; i++) result[start + i] = (float)(codes[i] * scale);
        }
        return result;
    }
}
