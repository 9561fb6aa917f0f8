using NUnit.Framework;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Quality;
using Option = OnnxAttention.Host.Quality.PlanSearch.Option;

namespace OnnxAttention.Tests.Quality;

/// <summary>The budgeted choice of one rule per layer, on cost curves small enough to check by hand.</summary>
[TestFixture]
public class PlanSearchTests
{
    private static Option W(int window, long bytes, double kl) => new(new WindowRule(window, 0), bytes, kl);

    [Test]
    public void TheFrontSpendsTheBudgetWhereItLowersTheSummedKlMost()
    {
        // Layer 0 gains 0.5 from its second step, layer 1 only 0.1: with room for one upgrade it goes to layer 0.
        IReadOnlyList<Option>[] curves =
        [
            [W(1, 10, 1.0), W(2, 20, 0.5), W(4, 40, 0.4)],
            [W(1, 10, 0.3), W(2, 20, 0.2)],
        ];
        var front = PlanSearch.Front(curves, budget: 30);
        Assert.That(front[0].Layers.Select(o => ((WindowRule)o.Rule).Window), Is.EqualTo(new[] { 2, 1 }));
        Assert.That(front[0].SummedKl, Is.EqualTo(0.8).Within(1e-12));
        Assert.That(front.All(p => p.Bytes <= 30));
        // With room for everything, the best of each.
        Assert.That(PlanSearch.Front(curves, budget: 1000)[0].Layers.Select(o => ((WindowRule)o.Rule).Window), Is.EqualTo(new[] { 4, 2 }));
        Assert.That(PlanSearch.Front(curves, budget: 19), Is.Empty, "no plan fits below the cheapest choice in every layer");
    }

    [Test]
    public void EveryPlanOnTheFrontIsBetterThanEveryCheaperOne()
    {
        IReadOnlyList<Option>[] curves =
        [
            [W(1, 1, 0.9), W(2, 2, 0.6), W(3, 3, 0.5), W(5, 5, 0.1)],
            [W(1, 1, 0.7), W(3, 3, 0.3), W(6, 6, 0.05)],
            [W(1, 1, 0.2), W(2, 2, 0.15)],
        ];
        var front = PlanSearch.Front(curves, budget: 9).OrderBy(p => p.Bytes).ToList();
        for (var i = 1; i < front.Count; i++) Assert.That(front[i].SummedKl, Is.LessThan(front[i - 1].SummedKl));
        // Brute force over all 24 plans: the front's best is the true best within the budget.
        var best = curves[0].SelectMany(a => curves[1].SelectMany(b => curves[2].Select(c => new[] { a, b, c })))
            .Where(p => p.Sum(o => o.Bytes) <= 9).Min(p => p.Sum(o => o.Kl));
        Assert.That(front.Min(p => p.SummedKl), Is.EqualTo(best).Within(1e-12));
    }
}
