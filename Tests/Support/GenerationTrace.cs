using NUnit.Framework;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Tests.Support;

/// <summary>What a <see cref="Generator"/> run gives each row: its sequence, and its logits after the prefill and after every step that another step follows.</summary>
public sealed record GenerationTrace(List<int>[] Sequences, List<float[]>[] Logits)
{
    /// <summary>Prefills (in pieces of <paramref name="chunk"/> tokens when given), then generates until done.</summary>
    public static GenerationTrace Run(SwappedDecoder model, int[][] prompts, GeneratorParams p, int? chunk = null)
    {
        using var g = new Generator(model, p, prompts);
        var logits = prompts.Select(_ => new List<float[]>()).ToArray();
        void Record()
        {
            for (var r = 0; r < prompts.Length; r++) logits[r].Add(g.Logits(r).ToArray());
        }
        if (chunk is { } c) g.PrefillInPieces(c);
        else g.Prefill();
        Record();
        while (!g.IsDone)
        {
            g.GenerateNextToken();
            if (!g.IsDone) Record();
        }
        return new GenerationTrace(Enumerable.Range(0, prompts.Length).Select(r => g.Sequence(r).ToList()).ToArray(), logits);
    }

    /// <summary>Row <paramref name="row"/> has the tokens and (within float32 logit tolerance) the logits of <paramref name="want"/>'s row <paramref name="wantRow"/>.</summary>
    public void AssertRowMatches(int row, GenerationTrace want, int wantRow, string what)
    {
        Assert.That(Sequences[row], Is.EqualTo(want.Sequences[wantRow]), $"{what}: row {row} tokens");
        Assert.That(Logits[row], Has.Count.EqualTo(want.Logits[wantRow].Count), $"{what}: row {row} logit sets");
        for (var step = 0; step < Logits[row].Count; step++)
        {
            TensorAssert.Close(Logits[row][step], want.Logits[wantRow][step], Tolerance.Float32Logits, $"{what}: row {row}, logits {step} (0: after the prefill)");
        }
    }
}
