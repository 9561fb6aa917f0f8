using System.Diagnostics;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Genai;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// The ways of generating that bench-generate races, loaded from the folders the parent writes once: genai on the
/// original folder, our Host on that folder's model.onnx swapped for a rule, genai on the swapped folder.
/// </summary>
internal static class GenerateContenders
{
    public static readonly string[] Keys = ["genai-original", "host-softmax", "host-window", "host-linear", "genai-swapped"];

    public const string OriginalFolder = "original", SwappedFolder = "swapped";

    /// <summary>The rule each key runs: the original model's own attention for genai-original.</summary>
    public static string Rule(string key, string windowRule, string linearRule) => key switch
    {
        "genai-original" => "original",
        "host-softmax" => "softmax",
        "host-window" => windowRule,
        "host-linear" or "genai-swapped" => linearRule,
        _ => throw new ArgumentException($"unknown contender '{key}'"),
    };

    public static string DisplayName(string key, string windowRule, string linearRule) => key switch
    {
        "genai-original" => "genai original (GQA + KV cache)",
        "genai-swapped" => $"genai swapped {linearRule}",
        _ => $"host {Rule(key, windowRule, linearRule)}",
    };

    /// <summary>How a contender's time grows with the context, for the parent's skip estimate.</summary>
    public static double Exponent(string key) => key is "genai-original" or "host-softmax" ? 1.5 : 1.0;

    /// <summary>A loaded contender: run(prompts, decode steps) gives (prefill seconds, decode seconds).</summary>
    public sealed record Loaded(Func<IReadOnlyList<IReadOnlyList<int>>, int, (double Prefill, double Decode)> Run, IDisposable Owner);

    public static Loaded Load(string key, string work, string windowRule, string linearRule, int chunk)
    {
        if (key is "genai-original" or "genai-swapped")
        {
            var genai = GenaiModel.Open(Path.Combine(work, key == "genai-original" ? OriginalFolder : SwappedFolder));
            return new Loaded((prompts, steps) =>
            {
                // The same pieces as our Host where genai takes them (batch 1): a 64k prompt in one call would hold
                // ORT's GroupQueryAttention scores and genai's logits for all its tokens at once.
                var run = genai.Generate(prompts, steps + 1, ignoreEos: true, prefillPiece: chunk);
                return (run.PrefillSeconds, run.DecodeSeconds);
            }, genai);
        }
        var decoder = DecoderModel.Load(Path.Combine(work, OriginalFolder, GenaiFolder.ModelFile), AttentionRule.Parse(Rule(key, windowRule, linearRule)));
        return new Loaded((prompts, steps) => HostRun(decoder, prompts, steps, chunk), decoder);
    }

    /// <summary>The prompts of a (context, batch) cell: random ids, the same for every contender and repeat.</summary>
    public static List<IReadOnlyList<int>> Prompts(int context, int batch, int vocab)
    {
        var random = new Random(7 + 31 * context + batch);
        return Enumerable.Range(0, batch).Select(_ => (IReadOnlyList<int>)Enumerable.Range(0, context).Select(_ => random.Next(3, vocab)).ToArray()).ToList();
    }

    /// <summary>Prefill, then steps + 1 GenerateNextToken calls: the first only samples from the prefill's logits, as genai's does.</summary>
    private static (double Prefill, double Decode) HostRun(DecoderModel decoder, IReadOnlyList<IReadOnlyList<int>> prompts, int steps, int chunk)
    {
        using var g = new Generator(decoder, new GeneratorParams(steps + 1), prompts);
        var clock = Stopwatch.StartNew();
        g.PrefillInPieces(chunk);
        var prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        while (!g.IsDone) g.GenerateNextToken();
        return (prefill, clock.Elapsed.TotalSeconds);
    }
}
