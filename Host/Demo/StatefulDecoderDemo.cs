using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Decoders;
using OnnxAttention.Host.Sessions;
using G = OnnxAttention.Graphs.Decoders.TinyLinearDecoderGraph;

namespace OnnxAttention.Host.Demo;

/// <summary>
/// The walking skeleton's main job: build a small decoder whose attention is our LinearAttention, prefill a prompt,
/// generate greedily one token at a time carrying the per-layer state, then check the result by re-running the
/// whole sequence in one call: both paths must give the same logits.
/// </summary>
public sealed class StatefulDecoderDemo(TinyDecoderConfig config)
{
    public sealed record Result(
        long[] Prompt,
        long[] Generated,
        double PrefillMilliseconds,
        double DecodeTokensPerSecond,
        double MaxLogitDifference,
        long StateBytesPerSequence);

    public Result Run(int promptLength, int newTokens, Action<int, long>? onToken = null)
    {
        if (promptLength < 1 || newTokens < 0)
        {
            throw new ArgumentException("the prompt needs at least one token and the token count cannot be negative");
        }
        using var owned = SessionFactory.Create(G.Build(config), intraOpThreads: 1);
        var session = owned.Session;
        var rng = new Random(config.Seed + 1);
        var prompt = Enumerable.Range(0, promptLength).Select(_ => (long)rng.Next(config.Vocab)).ToArray();

        var stepLogits = new List<float[]>();
        var state = ZeroState();
        var clock = Stopwatch.StartNew();
        var logits = Step(session, prompt, ref state);
        var prefillMs = clock.Elapsed.TotalMilliseconds;
        stepLogits.Add(logits);

        var generated = new List<long>();
        clock.Restart();
        for (var i = 0; i < newTokens; i++)
        {
            // The last position's row: [1, prompt, vocab] after the prefill, [1, 1, vocab] after a decode step.
            var next = ArgMax(logits, logits.Length - config.Vocab, config.Vocab);
            generated.Add(next);
            onToken?.Invoke(i, next);
            logits = Step(session, [next], ref state);
            stepLogits.Add(logits);
        }
        var decodeSeconds = clock.Elapsed.TotalSeconds;

        // One call over the whole sequence from a zero state must reproduce every step's logits.
        var all = prompt.Concat(generated).ToArray();
        var fresh = ZeroState();
        var whole = Step(session, all, ref fresh);
        var stepwise = stepLogits.SelectMany(x => x).ToArray();
        var maxDiff = 0.0;
        for (var i = 0; i < stepwise.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs(stepwise[i] - whole[i]));
        }
        var stateBytes = state.Sum(s => (long)s.Length * sizeof(float));
        return new Result(prompt, generated.ToArray(), prefillMs,
            newTokens == 0 ? 0 : newTokens / decodeSeconds, maxDiff, stateBytes);
    }

    private List<float[]> ZeroState()
    {
        var state = new List<float[]>();
        for (var l = 0; l < config.Layers; l++)
        {
            state.Add(new float[config.KvHeads * config.HeadDim * config.HeadDim]);
            state.Add(new float[config.KvHeads * config.HeadDim]);
        }
        return state;
    }

    /// <summary>Runs tokens through the model from <paramref name="state"/>, replacing it with the present state.</summary>
    private float[] Step(InferenceSession session, long[] tokens, ref List<float[]> state)
    {
        var names = new List<string> { G.InputIds };
        var values = new List<OrtValue> { OrtValue.CreateTensorValueFromMemory(tokens, [1, tokens.Length]) };
        var outputs = new List<string> { G.Logits };
        int dk = config.HeadDim;
        for (var l = 0; l < config.Layers; l++)
        {
            names.Add(G.PastState(l));
            values.Add(OrtValue.CreateTensorValueFromMemory(state[2 * l], [1, config.KvHeads, dk, dk]));
            names.Add(G.PastNormalizer(l));
            values.Add(OrtValue.CreateTensorValueFromMemory(state[2 * l + 1], [1, config.KvHeads, dk]));
            outputs.Add(G.PresentState(l));
            outputs.Add(G.PresentNormalizer(l));
        }
        try
        {
            using var runOptions = new RunOptions();
            using var results = session.Run(runOptions, names, values, outputs);
            var next = new List<float[]>();
            for (var i = 1; i < results.Count; i++)
            {
                next.Add(results[i].GetTensorDataAsSpan<float>().ToArray());
            }
            state = next;
            return results[0].GetTensorDataAsSpan<float>().ToArray();
        }
        finally
        {
            foreach (var v in values) v.Dispose();
        }
    }

    private static long ArgMax(float[] logits, int offset, int count)
    {
        var best = 0;
        for (var i = 1; i < count; i++)
        {
            if (logits[offset + i] > logits[offset + best]) best = i;
        }
        return best;
    }
}
