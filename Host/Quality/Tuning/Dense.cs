using System.Numerics.Tensors;

namespace OnnxAttention.Host.Quality.Tuning;

/// <summary>
/// The dense pieces of a llama2.c layer and their backward passes, over one row of T positions, row-major.
/// Weights are stored [out, in] as in the checkpoint, so a forward product is a dot of two contiguous rows.
/// </summary>
internal static class Dense
{
    public const float RmsEpsilon = 1e-5f;

    /// <summary>y[t, o] = x[t, :] . w[o, :].</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> y, int rows, int inDim, int outDim)
    {
        for (var t = 0; t < rows; t++)
        {
            var xr = x.Slice(t * inDim, inDim);
            var yr = y.Slice(t * outDim, outDim);
            for (var o = 0; o < outDim; o++) yr[o] = TensorPrimitives.Dot(xr, w.Slice(o * inDim, inDim));
        }
    }

    /// <summary>dx[t, :] += sum_o dy[t, o] w[o, :].</summary>
    public static void BackwardInput(ReadOnlySpan<float> dy, ReadOnlySpan<float> w, Span<float> dx, int rows, int inDim, int outDim)
    {
        for (var t = 0; t < rows; t++)
        {
            var dxr = dx.Slice(t * inDim, inDim);
            for (var o = 0; o < outDim; o++)
            {
                var g = dy[t * outDim + o];
                if (g != 0f) TensorPrimitives.MultiplyAdd(w.Slice(o * inDim, inDim), g, dxr, dxr);
            }
        }
    }

    /// <summary>dw[o, :] += sum_t dy[t, o] x[t, :].</summary>
    public static void BackwardWeight(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dw, int rows, int inDim, int outDim)
    {
        for (var t = 0; t < rows; t++)
        {
            var xr = x.Slice(t * inDim, inDim);
            for (var o = 0; o < outDim; o++)
            {
                var g = dy[t * outDim + o];
                if (g != 0f) TensorPrimitives.MultiplyAdd(xr, g, dw.Slice(o * inDim, inDim), dw.Slice(o * inDim, inDim));
            }
        }
    }

    /// <summary>y = x / rms(x) * weight per row, as the graph computes it (mean of squares + eps, sqrt, reciprocal); keeps 1 / rms.</summary>
    public static void RmsNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, Span<float> y, Span<float> inverse, int rows, int dim)
    {
        for (var t = 0; t < rows; t++)
        {
            var xr = x.Slice(t * dim, dim);
            var r = 1f / MathF.Sqrt(TensorPrimitives.Dot(xr, xr) / dim + RmsEpsilon);
            inverse[t] = r;
            var yr = y.Slice(t * dim, dim);
            TensorPrimitives.Multiply(xr, r, yr);
            TensorPrimitives.Multiply(yr, weight, yr);
        }
    }

    /// <summary>dx += d(x / rms(x) * weight) given dy.</summary>
    public static void RmsNormBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> inverse, ReadOnlySpan<float> dy, Span<float> dx, int rows, int dim)
    {
        Span<float> wdy = stackalloc float[dim];
        for (var t = 0; t < rows; t++)
        {
            var xr = x.Slice(t * dim, dim);
            var r = inverse[t];
            TensorPrimitives.Multiply(dy.Slice(t * dim, dim), weight, wdy);
            var s = TensorPrimitives.Dot(wdy, xr) * r * r * r / dim;
            var dxr = dx.Slice(t * dim, dim);
            TensorPrimitives.MultiplyAdd(wdy, r, dxr, dxr);
            TensorPrimitives.MultiplyAdd(xr, -s, dxr, dxr);
        }
    }

    /// <summary>Each value rounded to the nearest float16 (ties to even, as ORT's Cast) and back.</summary>
    public static void RoundToHalf(Span<float> x)
    {
        for (var i = 0; i < x.Length; i++) x[i] = (float)(Half)x[i];
    }

    /// <summary>Rotates the pairs (x[2i], x[2i+1]) of every head by the stored angle of the row's position; <paramref name="inverse"/> rotates back (the backward pass).</summary>
    public static void Rope(Span<float> x, int rows, int width, int headSize, float[] cos, float[] sin, bool inverse = false)
    {
        var half = headSize / 2;
        for (var t = 0; t < rows; t++)
        {
            var xr = x.Slice(t * width, width);
            for (var i = 0; i < width; i += 2)
            {
                var pair = i % headSize / 2;
                float c = cos[t * half + pair], s = inverse ? -sin[t * half + pair] : sin[t * half + pair];
                float a = xr[i], b = xr[i + 1];
                xr[i] = a * c - b * s;
                xr[i + 1] = a * s + b * c;
            }
        }
    }
}
