using NUnit.Framework;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// Element-wise closeness: |got - want| &lt;= Absolute * max(1, scale) + Relative * |want|, where scale is the
/// tensor's largest |want|. Rounding error follows the size of the numbers that were summed, not of each result:
/// an output that lands near zero out of terms of size 100 carries the rounding of 100, so the absolute part grows
/// with the tensor's magnitude (for outputs of size 1 or less it is exactly Absolute).
/// </summary>
public static class TensorAssert
{
    public static void Close(ReadOnlySpan<float> got, ReadOnlySpan<double> want, Tolerance tol, string what)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), $"{what}: length");
        var scale = 1.0;
        foreach (var w in want)
        {
            if (double.IsFinite(w)) scale = Math.Max(scale, Math.Abs(w));
        }
        var absolute = tol.Absolute * scale;
        var worst = -1;
        var worstExcess = 0.0;
        for (var i = 0; i < got.Length; i++)
        {
            var limit = absolute + tol.Relative * Math.Abs(want[i]);
            var err = Math.Abs(got[i] - want[i]);
            if (!(err <= limit) && (worst < 0 || err - limit > worstExcess))
            {
                worst = i;
                worstExcess = double.IsNaN(err) ? double.PositiveInfinity : err - limit;
            }
        }
        if (worst >= 0)
        {
            Assert.Fail($"{what}: element {worst} is {got[worst]}, expected {want[worst]} (tolerance abs {tol.Absolute} x scale {scale:G3}, rel {tol.Relative})");
        }
    }

    public static void Close(ReadOnlySpan<float> got, ReadOnlySpan<float> want, Tolerance tol, string what)
    {
        var w = new double[want.Length];
        for (var i = 0; i < w.Length; i++) w[i] = want[i];
        Close(got, w, tol, what);
    }
}
