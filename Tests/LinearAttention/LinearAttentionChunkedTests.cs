using NUnit.Framework;
using OnnxAttention.KernelForms;
using OnnxAttention.Operators.LinearAttention;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.LinearAttention;

/// <summary>The chunked prefill form against the token-by-token definition.</summary>
[TestFixture]
[NonParallelizable] // its sessions share the fixture's KernelFormSwitch
public unsafe class LinearAttentionChunkedTests
{
    private readonly KernelFormSwitch _forms = new();

    [TestCase(2, 130, 4, 2, 64, 64, "elu_plus_one", true)]
    [TestCase(1, 65, 3, 3, 60, 17, "identity", false)]
    public void ChosenThroughTheOperatorMatchesTheReference(int batch, int t, int qHeads, int kvHeads, int dk, int dv, string map, bool normalize)
    {
        var c = new LinearAttentionCase(batch, t, qHeads, kvHeads, dk, dv, map, normalize, Scale: 0.5f, Seed: t);
        using var session = new LinearAttentionSession(c.Options, withPast: true, forms: _forms);
        _forms.Linear = LinearForm.Chunked;
        LinearAttentionSession.Outputs got;
        try
        {
            got = session.Run(c.Batch, c.Seq, c.Query, c.Key, c.Value, c.PastState, c.PastNormalizer, c.StateShape, c.NormalizerShape);
        }
        finally
        {
            _forms.Reset();
        }
        var want = c.Reference(withPast: true);
        TensorAssert.Close(got.Y, want.Output, Tolerance.Float32, $"{c}: output");
        TensorAssert.Close(got.State, want.State, Tolerance.Float32, $"{c}: state");
        TensorAssert.Close(got.Normalizer, want.Normalizer, Tolerance.Float32, $"{c}: normaliser");
    }

    [TestCase(1, 1, 1, 1, "elu_plus_one", true)]
    [TestCase(63, 60, 60, 2, "elu_plus_one", true)]
    [TestCase(64, 64, 64, 1, "identity", false)]
    [TestCase(65, 128, 32, 4, "relu", true)]
    [TestCase(500, 64, 64, 2, "elu_plus_one", true)]
    [TestCase(130, 1, 7, 3, "identity", false)]
    public void MatchesTheReference(int t, int dk, int dv, int group, string map, bool normalize)
    {
        var c = new LinearAttentionCase(1, t, group, 1, dk, dv, map, normalize, Scale: 0.5f, Seed: t + dk);
        var q = c.Query; var k = c.Key; var v = c.Value; var s0 = c.PastState; var z0 = c.PastNormalizer;
        var y = new float[t * group * dv];
        var state = (float[])s0.Clone();
        var z = (float[])z0.Clone();
        var scratch = new float[LinearAttentionChunked.ScratchFloats(dk, dv)];
        fixed (float* pq = q, pk = k, pv = v, py = y, ps = state, pz = z, pscratch = scratch)
        {
            var item = new LinearAttentionChunked.Item
            {
                Query = pq,
                Key = pk,
                Value = pv,
                Output = py,
                State = ps,
                Normalizer = pz,
                QueryStride = group * dk,
                KeyStride = dk,
                ValueStride = dv,
                OutputStride = group * dv,
                Tokens = t,
                KeyDim = dk,
                ValueDim = dv,
                GroupSize = group,
                Map = FeatureMaps.ByName[map],
                Scale = 0.5f,
                Epsilon = 1e-6f,
                Normalize = normalize,
            };
            LinearAttentionChunked.Run(item, pscratch);
        }
        var want = LinearAttentionReference.Run(c.Attributes, 1, t, dk, dv, q, k, v, s0, z0);
        TensorAssert.Close(y, want.Output, Tolerance.Float32, $"{c}: output");
        TensorAssert.Close(state, want.State, Tolerance.Float32, $"{c}: state");
        TensorAssert.Close(z, want.Normalizer, Tolerance.Float32, $"{c}: normaliser");
    }
}
