using NUnit.Framework;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>The single-token pass reading the past state from another buffer, as a decode step with separate past and present does.</summary>
[TestFixture]
public unsafe class LinearAttentionSweepsTests
{
    [Test]
    public void ReadingThePastFromAnotherBufferEqualsCopyingItFirst([Values(1, 2, 4, 5)] int heads, [Values(false, true)] bool gated,
        [Values(1, 15, 64, 70, 128)] int dv)
    {
        const int dk = 11;
        var seed = heads * 1000 + dv + (gated ? 1 : 0);
        var past = Seeded.Uniform(seed, dk * dv);
        var k = Seeded.Uniform(seed + 1, dk);
        var f = Seeded.Uniform(seed + 2, dk, 0.5f, 1f);
        var v = Seeded.Uniform(seed + 3, dv);
        var q = Seeded.Uniform(seed + 4, heads * dk);

        var copied = (float[])past.Clone();
        var copiedY = new float[heads * dv];
        var present = Seeded.Uniform(seed + 5, dk * dv); // stale contents the pass must overwrite
        var presentY = new float[heads * dv];
        var pastBefore = (float[])past.Clone();
        fixed (float* pPast = past, pCopied = copied, pPresent = present, pk = k, pf = f, pv = v, pq = q, py1 = copiedY, py2 = presentY)
        {
            LinearAttentionSweeps.WriteAndReadOut(pCopied, dk, dv, gated ? pf : null, pk, pv, pq, heads, py1);
            LinearAttentionSweeps.WriteAndReadOut(pPresent, dk, dv, gated ? pf : null, pk, pv, pq, heads, py2, source: pPast);
        }
        Assert.That(present, Is.EqualTo(copied), "present state");
        Assert.That(presentY, Is.EqualTo(copiedY), "outputs");
        Assert.That(past, Is.EqualTo(pastBefore), "the past is only read");
    }
}
