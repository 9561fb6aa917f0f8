using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.WindowAttention;

/// <summary>bfloat16 query/key/value/output with float32 caches: the same op name, chosen by ORT from the input types.</summary>
[TestFixture]
public class WindowAttentionBFloat16Tests : BFloat16AttentionChecks<WindowAttentionCase, WindowState, WindowAttentionSession>
{
    public static IEnumerable<WindowAttentionCase> Cases()
    {
        yield return new WindowAttentionCase(2, 65, 4, 2, 64, 64, 16, Sinks: 2);
        yield return new WindowAttentionCase(1, 2, 2, 1, 128, 60, 5);
        yield return new WindowAttentionCase(2, 21, 4, 4, 1, 8, 5, Sinks: 6, Softcap: 0.5f, History: 3);
        yield return new WindowAttentionCase(3, 1, 6, 3, 60, 1, 4, History: 9);
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesReferenceOnBFloat16RoundedInputs(WindowAttentionCase c) => CheckMatchesReferenceOnBFloat16RoundedInputs(c);

    [TestCaseSource(nameof(Cases))]
    public void PrefillEqualsTokenByTokenDecode(WindowAttentionCase c) => CheckPrefillEqualsTokenByTokenDecode(c);

    protected override WindowAttentionSession Open(WindowAttentionCase c) => new(c.Options, activation: BFloat16Type);

    protected override IStateOutputs<WindowState> Run(WindowAttentionSession session, WindowAttentionCase c, int seq, float[] q, float[] k,
        float[] v, WindowState state) => session.Run(c, seq, q, k, v, state);

    protected override double[] CheckStatesAgainstReference(WindowAttentionCase c, WindowState past, float[] q, float[] k, float[] v,
        IStateOutputs<WindowState> got)
    {
        Assert.That(got.All["present_key_cache"].Data, Is.TypeOf<float[]>(), "cache element type");
        var want = WindowAttentionReference.Run(c.Attributes, c.Batch, c.Seq, c.Dk, c.Dv, q, k, v, past.Key, past.Value, past.Position);
        TensorAssert.Close(got.Present!.Key, want.KeyCache, Tolerance.Float32, $"{c}: float32 key cache");
        TensorAssert.Close(got.Present.Value, want.ValueCache, Tolerance.Float32, $"{c}: float32 value cache");
        Assert.That(got.Present.Position, Is.EqualTo(want.Position), $"{c}: position");
        return want.Output;
    }

    protected override void CheckStatesAgree(WindowAttentionCase c, WindowState stepwise, WindowState whole)
    {
        Assert.That(stepwise.Key, Is.EqualTo(whole.Key), $"{c}: key cache (copied values, so exactly equal)");
        Assert.That(stepwise.Value, Is.EqualTo(whole.Value), $"{c}: value cache");
        Assert.That(stepwise.Position, Is.EqualTo(whole.Position), $"{c}: position");
    }
}
