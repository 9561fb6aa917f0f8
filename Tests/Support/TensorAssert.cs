using NUnit.Framework;

namespace OnnxAttention.Tests.Support;

public static class TensorAssert
{
    public static void Close(ReadOnlySpan<float> got, ReadOnlySpan<double> want, Tolerance tol, string what)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), $"{what}: length");
        var worst = -1;
        var worstExcess = 0.0;
        for (var i = 0; i < got.Length; i++)
        {
            var limit = tol.Absolute + tol.Relative * Math.Abs(want[i]);
            var err = Math.Abs(got[i] - want[i]);
            if (!(err <= limit) && (worst < 0 || err - limit > worstExcess))
            {
                worst = i;
                worstExcess = double.IsNaN(err) ? double.PositiveInfinity : err - limit;
            }
        }
        if (worst >= 0)
        {
            Assert.Fail($"{what}: element {worst} is {got[worst]}, expected {want[worst]} (tolerance abs {tol.Absolute}, rel {tol.Relative})");
        }
    }

    public static void Close(ReadOnlySpan<float> got, ReadOnlySpan<float> want, Tolerance tol, string what)
    {
        var w = new double[want.Length];
        for (var i = 0; i < w.Length; i++) w[i] = want[i];
        Close(got, w, tol, what);
    }
}
