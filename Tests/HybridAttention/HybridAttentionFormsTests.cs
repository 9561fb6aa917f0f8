using NUnit.Framework;
using OnnxAttention.KernelForms;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>
/// The tuned CPU item (vector passes over the ring, rank-1 evictions) and the untuned span loop against the reference
/// and each other, for both compressions, and the blocked prefill (linear compression, windows of a block or more):
/// evictions inside the call and from a wrapped past ring, grouped heads, odd dims and head dims at and past a vector
/// width.
/// </summary>
[TestFixture]
[NonParallelizable] // its sessions share the fixture's KernelFormSwitch
public class HybridAttentionFormsTests
{
    private readonly KernelFormSwitch _forms = new();

    private static readonly RecurrentForm[] Forms = [RecurrentForm.Untuned, RecurrentForm.PerToken, RecurrentForm.Blocks, RecurrentForm.Auto];

    public static IEnumerable<HybridAttentionCase> Cases()
    {
        foreach (var kind in new[] { "linear", "mean" })
        {
            yield return new HybridAttentionCase(2, 150, 4, 2, 64, 64, 100, kind, Seed: 1);
            yield return new HybridAttentionCase(1, 65, 6, 2, 60, 17, 8, kind, Seed: 2);
            yield return new HybridAttentionCase(2, 40, 2, 2, 128, 128, 16, kind, Seed: 3, History: 37);
            yield return new HybridAttentionCase(1, 30, 2, 1, 1, 1, 3, kind, Scale: 0.3f, Seed: 4, History: 11);
            yield return new HybridAttentionCase(2, 1, 4, 4, 16, 20, 5, kind, Seed: 5, History: 70);
        }
        // Blocks: a window of exactly one block over a wrapped ring, one-dimensional heads, and a call the default takes.
        yield return new HybridAttentionCase(2, 100, 6, 2, 128, 128, 64, Seed: 6, History: 90);
        yield return new HybridAttentionCase(1, 140, 2, 2, 1, 1, 70, Seed: 7, History: 200);
        yield return new HybridAttentionCase(1, 130, 2, 1, 16, 24, 256, Epsilon: 0.5f, Seed: 8, History: 300);
    }

    [TestCaseSource(nameof(Cases))]
    public void EveryFormMatchesTheReferenceAndTheOthers(HybridAttentionCase c)
    {
        using var session = new HybridAttentionSession(c.Options, forms: _forms);
        var past = c.History > 0 ? c.Past : c.ZeroState;
        var want = c.Reference(past);
        var untuned = Run(session, c, past, RecurrentForm.Untuned);
        foreach (var form in Forms)
        {
            var got = Run(session, c, past, form);
            TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c} {form}: output");
            TensorAssert.Close(got.Present!.CompressedKey, want.CompressedKey, Tolerance.Float32, $"{c} {form}: present_compressed_key");
            TensorAssert.Close(got.Present.CompressedValue, want.CompressedValue, Tolerance.Float32, $"{c} {form}: present_compressed_value");
            Assert.That(got.Present.Position, Is.EqualTo(want.Position), $"{c} {form}: present_position");
            TensorAssert.Close(got.Y, untuned.Y, Tolerance.Float32Reordered, $"{c} {form}: output vs untuned");
            Assert.That(got.Present.Key, Is.EqualTo(untuned.Present!.Key), $"{c} {form}: key cache vs untuned");
            Assert.That(got.Present.Value, Is.EqualTo(untuned.Present.Value), $"{c} {form}: value cache vs untuned");
        }
    }

    private HybridAttentionSession.Outputs Run(HybridAttentionSession session, HybridAttentionCase c, HybridState past, RecurrentForm form)
    {
        _forms.Recurrent = form;
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
