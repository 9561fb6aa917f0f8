using NUnit.Framework;
using OnnxAttention.KernelForms;
using OnnxAttention.Tests.SummaryAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Runtime;

/// <summary>
/// The forms tests compare forms that give the same results, so they would pass if a switch never reached the kernels:
/// here a counting item shows that a session opened through a <see cref="KernelFormSwitch"/> runs what it holds, once
/// per (batch, KV head), and that a session opened the ordinary way does not.
/// </summary>
[TestFixture]
[NonParallelizable] // counts calls in a static
public unsafe class KernelFormsTests
{
    private static int s_items;

    private static void CountingItem(void* job, nint item)
    {
        Interlocked.Increment(ref s_items);
        SummaryAttentionSpans.RunItem(job, item);
    }

    [Test]
    public void OnlyTheSwitchsSessionsRunItsForms()
    {
        var c = new SummaryAttentionCase(2, 5, 4, 2, 8, 8, "cumulative", Seed: 1);
        var forms = new KernelFormSwitch();
        forms.Forms.SummaryItem = &CountingItem;
        using var forced = new SummaryAttentionSession(c.Options, 0, forms: forms);
        using var ordinary = new SummaryAttentionSession(c.Options, 0);
        s_items = 0;
        var want = ordinary.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        Assert.That(s_items, Is.Zero, "the ordinary session ran the switch's item");
        var got = forced.Run(c, c.Seq, c.Query, c.Key, c.Value, null);
        Assert.That(s_items, Is.EqualTo(c.Batch * c.KvHeads), "items run through the switch");
        TensorAssert.Close(got.Y, want.Y, Tolerance.Float32Reordered, "output");
    }
}
