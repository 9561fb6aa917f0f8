using NUnit.Framework;
using OnnxAttention.Tests.Reference;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.HybridAttention;

/// <summary>A HybridAttention call's output and every present state against the double reference, in one place.</summary>
public static class HybridAttentionAssert
{
    /// <param name="output">the output's tolerance (the present states are compared at float32's)</param>
    public static HybridState MatchesReference(HybridAttentionSession.Outputs got, HybridAttentionReference.Result want, Tolerance output, string label)
    {
        TensorAssert.Close(got.Y, want.Output, output, $"{label}: output");
        var present = got.Present!;
        TensorAssert.Close(present.Key, want.Key, Tolerance.Float32, $"{label}: present_key");
        TensorAssert.Close(present.Value, want.Value, Tolerance.Float32, $"{label}: present_value");
        Assert.That(present.Position, Is.EqualTo(want.Position), $"{label}: present_position");
        TensorAssert.Close(present.CompressedKey, want.CompressedKey, Tolerance.Float32, $"{label}: present_compressed_key");
        TensorAssert.Close(present.CompressedValue, want.CompressedValue, Tolerance.Float32, $"{label}: present_compressed_value");
        return present;
    }
}
