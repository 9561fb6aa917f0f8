using NUnit.Framework;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Tests.Support;

/// <summary>Bytes the decode steps of a prefilled generator allocate, counted on every thread (kernels run on ORT's pool too).</summary>
public static class DecodeAllocations
{
    public static long Measure(Generator g, int steps)
    {
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < steps; i++) g.GenerateNextToken();
        return GC.GetTotalAllocatedBytes(precise: true) - before;
    }

    /// <summary>
    /// After 50 warm-up steps (first-run allocations), 200 early and 200 late steps must allocate about the same and
    /// little: only the growing token lists may allocate (amortised doubling), nothing per step scales with position.
    /// The late count is the smaller of two windows: an allocation that grows with the sequence shows in both, while a
    /// one-off burst on another thread (the runtime's background JIT) seen once made this flaky.
    /// The generator needs at least 650 new tokens.
    /// </summary>
    public static void AssertFlat(Generator g, string what)
    {
        Measure(g, 50);
        var early = Measure(g, 200);
        var late = Math.Min(Measure(g, 200), Measure(g, 200));
        Assert.That(late, Is.LessThan(early + 8 * 1024), $"{what}: early {early} B, late {late} B");
        Assert.That(late / 200, Is.LessThan(512), $"{what}: {late / 200} bytes per step");
        TestContext.Out.WriteLine($"{what}: allocated per decode step: early {early / 200} B, late {late / 200} B");
    }
}
