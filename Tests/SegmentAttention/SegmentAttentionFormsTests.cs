using NUnit.Framework;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.SegmentAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.SegmentAttention;

/// <summary>
/// Every CPU form of the item (untuned span loop, tuned per-token loop, blocks of queries, the default choice) against
/// the reference and against each other: segments shorter and longer than a block, blocks cut by segment ends, past
/// states mid-segment and at a boundary, grouped heads, odd dims, and a segment too long for the blocks.
/// </summary>
[TestFixture]
[NonParallelizable] // its sessions share the fixture's KernelFormSwitch
public class SegmentAttentionFormsTests
{
    private readonly KernelFormSwitch _forms = new();

    private static readonly RecurrentForm[] Forms = [RecurrentForm.Untuned, RecurrentForm.PerToken, RecurrentForm.Blocks, RecurrentForm.Auto];

    public static IEnumerable<SegmentAttentionCase> Cases()
    {
        yield return new SegmentAttentionCase(2, 150, 4, 2, 64, 64, 100, Seed: 1);                          // blocks of 64, cut at 100 and 200
        yield return new SegmentAttentionCase(1, 65, 2, 1, 60, 17, 8, Seed: 2);                             // blocks cut to 8 by the segments
        yield return new SegmentAttentionCase(2, 70, 3, 3, 128, 128, 64, Seed: 3, History: 37, HistoryStep: 27); // rows at 37 and 64
        yield return new SegmentAttentionCase(1, 130, 4, 1, 1, 1, 200, Seed: 4, History: 150);              // memory and a block across L
        yield return new SegmentAttentionCase(2, 20, 2, 2, 7, 5, 1, Scale: 0.3f, Seed: 5, History: 3);       // every token its own segment
        yield return new SegmentAttentionCase(1, 2, 2, 1, 16, 16, 4, Seed: 6, History: 3);                   // shortest call the blocks take
        yield return new SegmentAttentionCase(1, 20, 1, 1, 1, 2, SegmentAttentionBlocks.MaxSegmentLength + 1, Seed: 7); // too long: per token
    }

    [TestCaseSource(nameof(Cases))]
    public void EveryFormMatchesTheReferenceAndTheOthers(SegmentAttentionCase c)
    {
        using var session = new SegmentAttentionSession(c.Options, forms: _forms);
        var past = c.History > 0 ? c.Past : c.ZeroState;
        var want = c.Reference(past);
        var perToken = Run(session, c, past, RecurrentForm.PerToken);
        foreach (var form in Forms)
        {
            var got = Run(session, c, past, form);
            TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c} {form}: output");
            TensorAssert.Close(got.Present!.MemoryKey, want.MemoryKey, Tolerance.Float32, $"{c} {form}: present_memory_key");
            TensorAssert.Close(got.Present.SegmentValue, want.SegmentValue, Tolerance.Float32, $"{c} {form}: present_segment_value");
            Assert.That(got.Present.Position, Is.EqualTo(want.Position), $"{c} {form}: present_position");
            TensorAssert.Close(got.Y, perToken.Y, Tolerance.Float32Reordered, $"{c} {form}: output vs per token");
            // The buffers hold copies of input rows (or zeros) whichever form wrote them.
            Assert.That(got.Present.MemoryKey, Is.EqualTo(perToken.Present!.MemoryKey), $"{c} {form}: memory key vs per token");
            Assert.That(got.Present.MemoryValue, Is.EqualTo(perToken.Present.MemoryValue), $"{c} {form}: memory value vs per token");
            Assert.That(got.Present.SegmentKey, Is.EqualTo(perToken.Present.SegmentKey), $"{c} {form}: segment key vs per token");
            Assert.That(got.Present.SegmentValue, Is.EqualTo(perToken.Present.SegmentValue), $"{c} {form}: segment value vs per token");
        }
    }

    private SegmentAttentionSession.Outputs Run(SegmentAttentionSession session, SegmentAttentionCase c, SegmentState past, RecurrentForm form)
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
