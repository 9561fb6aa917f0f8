using NUnit.Framework;
using OnnxAttention.KernelForms;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>
/// The blocked prefill (blocks of queries through matrix products) against the reference and the per-token loop:
/// windows shorter and longer than a block, sinks below, inside and beyond the window, past caches whose ring has
/// wrapped (the block then reads positions before the call from the ring), softcap, grouped heads, odd dims.
/// </summary>
[TestFixture]
[NonParallelizable] // its sessions share the fixture's KernelFormSwitch
public class WindowAttentionBlocksTests
{
    private readonly KernelFormSwitch _forms = new();

    public static IEnumerable<WindowAttentionCase> Cases()
    {
        yield return new WindowAttentionCase(2, 130, 4, 2, 64, 64, 200, Seed: 1);                       // window > call
        yield return new WindowAttentionCase(2, 150, 4, 2, 64, 64, 40, Sinks: 3, Seed: 2);              // window < block
        yield return new WindowAttentionCase(1, 129, 3, 1, 60, 17, 70, Sinks: 90, Seed: 3);             // sinks beyond the window
        yield return new WindowAttentionCase(2, 100, 2, 2, 16, 48, 33, Sinks: 5, Seed: 4, History: 37); // ring wrapped in the past
        yield return new WindowAttentionCase(3, 70, 4, 4, 7, 5, 64, Sinks: 2, Seed: 5, History: 200);   // rows at different ring offsets
        yield return new WindowAttentionCase(1, 65, 2, 1, 128, 128, 1000, Sinks: 1, Scale: 0.2f, Softcap: 3f, Seed: 6, History: 50);
        yield return new WindowAttentionCase(2, 2, 2, 1, 8, 8, 1, Seed: 7, History: 3);                  // window 1
        yield return new WindowAttentionCase(1, 64, 1, 1, 1, 1, 64, Sinks: 64, Seed: 8, History: 63);
    }

    [TestCaseSource(nameof(Cases))]
    public void BlocksMatchTheReferenceAndThePerTokenLoop(WindowAttentionCase c)
    {
        using var session = new WindowAttentionSession(c.Options, forms: _forms);
        var past = c.History > 0 ? c.Past : c.ZeroState;
        var blocks = Run(session, c, past, WindowForm.Blocks);
        var perToken = Run(session, c, past, WindowForm.PerToken);
        var want = c.Reference(past);
        TensorAssert.Close(blocks.Y, want.Output, Tolerance.Float32, $"{c}: output");
        TensorAssert.Close(blocks.Present!.Key, want.KeyCache, Tolerance.Float32, $"{c}: present_key_cache");
        TensorAssert.Close(blocks.Present.Value, want.ValueCache, Tolerance.Float32, $"{c}: present_value_cache");
        Assert.That(blocks.Present.Position, Is.EqualTo(want.Position), $"{c}: present_position");
        TensorAssert.Close(blocks.Y, perToken.Y, Tolerance.Float32Reordered, $"{c}: output vs per token");
        // The caches are copies of input rows either way.
        Assert.That(blocks.Present.Key, Is.EqualTo(perToken.Present!.Key), $"{c}: key cache vs per token");
        Assert.That(blocks.Present.Value, Is.EqualTo(perToken.Present.Value), $"{c}: value cache vs per token");
    }

    private WindowAttentionSession.Outputs Run(WindowAttentionSession session, WindowAttentionCase c, WindowState past, WindowForm form)
    {
        _forms.Window = form;
        try
        {
            return session.Run(c, c.Seq, c.Query, c.Key, c.Value, past);
        }
        finally
        {
            _forms.Reset();
        }
    }
}
