using NUnit.Framework;
using OnnxAttention.Host.Quality;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>
/// Attention transfer's loss and hand-written gradients against the double-precision definition
/// (<see cref="FittedAttentionReference"/>) and its finite differences, on small seeded layers.
/// </summary>
[TestFixture]
public class FeatureMapFitTests
{
    private static LayerAttention Layer(int seed, int rows = 2, int seq = 11, int qHeads = 4, int kvHeads = 2, int d = 3, int dv = 2)
    {
        var output = Seeded.Uniform(seed + 3, rows * qHeads * seq * dv);
        return new LayerAttention(rows, seq, qHeads, kvHeads, d, dv, 1 / Math.Sqrt(d),
            Seeded.Uniform(seed, rows * qHeads * seq * d).Select(x => 2 * x).ToArray(),
            Seeded.Uniform(seed + 1, rows * kvHeads * seq * d).Select(x => 2 * x).ToArray(),
            Seeded.Uniform(seed + 2, rows * kvHeads * seq * dv), output);
    }

    private static float[] Parameters(FeatureMapFit fit, int seed)
    {
        var p = fit.Initial(seed);
        var noise = Seeded.Uniform(seed + 10, p.Length);
        for (var i = 0; i < p.Length; i++) p[i] += 0.5f * noise[i];
        return p;
    }

    [TestCase(0, 2)]
    [TestCase(3, 2)]
    [TestCase(1, 3)]
    [TestCase(20, 1)] // a window longer than the sequence: nothing is ever evicted
    public void LossIsTheMeanSquaredErrorOfTheDefinedReplacement(int window, int projections)
    {
        var layer = Layer(window * 10 + projections);
        var fit = new FeatureMapFit(layer, projections, window);
        var p = Parameters(fit, 5);
        var got = fit.LossAndGradient(p, new float[fit.ParameterCount]);
        var want = FittedAttentionReference.Loss(layer, projections, window, [.. p.Select(x => (double)x)]);
        Assert.That(got, Is.EqualTo(want).Within(1e-5 * want + 1e-9));
    }

    [TestCase(0, 2)]
    [TestCase(3, 2)]
    [TestCase(2, 3)]
    public void GradientMatchesFiniteDifferencesOfTheDefinition(int window, int projections)
    {
        var layer = Layer(100 + window * 10 + projections);
        var fit = new FeatureMapFit(layer, projections, window);
        var p = Parameters(fit, 9);
        var gradient = new float[fit.ParameterCount];
        fit.LossAndGradient(p, gradient);
        var x = p.Select(v => (double)v).ToArray();
        const double h = 1e-5;
        var largest = gradient.Max(MathF.Abs);
        Assert.That(largest, Is.GreaterThan(0));
        for (var i = 0; i < x.Length; i++)
        {
            var saved = x[i];
            x[i] = saved + h;
            var up = FittedAttentionReference.Loss(layer, projections, window, x);
            x[i] = saved - h;
            var down = FittedAttentionReference.Loss(layer, projections, window, x);
            x[i] = saved;
            var numeric = (up - down) / (2 * h);
            Assert.That(gradient[i], Is.EqualTo(numeric).Within(2e-3 * largest), $"parameter {i} of {x.Length}");
        }
    }

    [Test]
    public void FittingReproducesAReplacementOfTheSameForm()
    {
        // Targets made by the replacement itself with other weights: the fit must recover most of them.
        var shape = Layer(7, rows: 2, seq: 40, d: 4, dv: 3);
        var teacherFit = new FeatureMapFit(shape, 2, window: 0);
        var teacher = Parameters(teacherFit, 21).Select(v => (double)v).ToArray();
        var target = FittedAttentionReference.Outputs(shape, 2, 0, teacher).Select(v => (float)v).ToArray();
        var layer = shape with { Output = target };
        var fit = new FeatureMapFit(layer, 2, window: 0);
        var start = fit.LossAndGradient(fit.Initial(1), new float[fit.ParameterCount]);
        var result = fit.Fit(steps: 300, learningRate: 3e-2f);
        Assert.That(result.Mse, Is.LessThan(start / 10), $"from {start} to {result.Mse}");
        Assert.That(result.Query.Projections, Is.EqualTo(2));
        Assert.That(result.Mix, Is.All.EqualTo(1f), "without a window the mix is not used");
    }

    [Test]
    public void TheMixOfAHybridFitStaysPositiveAndTheFitBeatsTheWindowAlone()
    {
        var layer = Layer(31, seq: 30);
        var fit = new FeatureMapFit(layer, 2, window: 3);
        var silent = fit.Initial(1);
        for (var i = fit.ParameterCount - layer.QueryHeads; i < fit.ParameterCount; i++) silent[i] = -40f;
        var windowAlone = fit.LossAndGradient(silent, new float[fit.ParameterCount]);
        var result = fit.Fit(steps: 150);
        Assert.That(result.Mix, Is.All.GreaterThan(0f));
        Assert.That(result.Mse, Is.LessThan(windowAlone));
    }

    [Test]
    public void BadSizesAreRefused()
    {
        var layer = Layer(1);
        Assert.Throws<ArgumentException>(() => new FeatureMapFit(layer, 0, 0));
        Assert.Throws<ArgumentException>(() => new FeatureMapFit(layer, 2, -1));
    }
}
