using NUnit.Framework;
using OnnxAttention.KernelForms;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SummaryAttention;

/// <summary>
/// The tuned CPU item (vector passes over the slots, one-pass EMA blend) and the untuned span loop against the
/// reference and each other, for every summary kind, from zeros and from a past state, with head dims at and past a
/// vector width.
/// </summary>
[TestFixture]
[NonParallelizable] // its sessions share the fixture's KernelFormSwitch
public class SummaryAttentionFormsTests
{
    private readonly KernelFormSwitch _forms = new();

    public static IEnumerable<SummaryAttentionCase> Cases()
    {
        yield return new SummaryAttentionCase(2, 65, 4, 2, 64, 64, "cumulative", Seed: 1);
        yield return new SummaryAttentionCase(2, 40, 6, 2, 60, 17, "moving", Window: 7, Seed: 2, History: 9);
        yield return new SummaryAttentionCase(1, 63, 2, 2, 128, 128, "ema", Alpha: 0.95f, NumSlots: 5, Seed: 3);
        yield return new SummaryAttentionCase(2, 20, 2, 1, 17, 33, "ema", Alpha: 0.7f, NumSlots: 16, Scale: 0.5f, Seed: 4, History: 6);
        yield return new SummaryAttentionCase(1, 1, 2, 1, 1, 1, "ema", NumSlots: 2, Seed: 5, History: 3);
    }

    [TestCaseSource(nameof(Cases))]
    public void TunedAndUntunedMatchTheReferenceAndEachOther(SummaryAttentionCase c)
    {
        using var session = new SummaryAttentionSession(c.Options, c.History > 0 ? c.PastInputs : 0, forms: _forms);
        var past = c.History > 0 ? c.Past : null;
        var want = c.Reference(past);
        var untuned = Run(session, c, past, RecurrentForm.Untuned);
        var tuned = Run(session, c, past, RecurrentForm.Auto);
        foreach (var (form, got) in new[] { ("untuned", untuned), ("tuned", tuned) })
        {
            TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c} {form}: output");
            TensorAssert.Close(got.Present!.KeySummary, want.KeySummary, Tolerance.Float32, $"{c} {form}: present_key_summary");
            TensorAssert.Close(got.Present.ValueSummary, want.ValueSummary, Tolerance.Float32, $"{c} {form}: present_value_summary");
            Assert.That(got.Present.Count, Is.EqualTo(want.Count), $"{c} {form}: present_count");
        }
        TensorAssert.Close(tuned.Y, untuned.Y, Tolerance.Float32Reordered, $"{c}: output, tuned vs untuned");
    }

    private SummaryAttentionSession.Outputs Run(SummaryAttentionSession session, SummaryAttentionCase c, SummaryState? past, RecurrentForm form)
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
