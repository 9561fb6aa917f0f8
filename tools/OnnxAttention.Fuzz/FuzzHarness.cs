using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Fuzz;

/// <summary>How one case ended. Refused and Ran are fine; the rest are defects.</summary>
public enum FuzzOutcome
{
    /// <summary>Our own refusal (a GraphException: the one-line error the CLI prints).</summary>
    Refused,

    /// <summary>ONNX Runtime refused the model or the run with its own error (OnnxRuntimeException: one line in the CLI).</summary>
    RefusedByOrt,

    /// <summary>Loaded, swapped, saved and ran.</summary>
    Ran,

    /// <summary>Any other exception: a bug (the CLI would print a .NET message or a stack trace).</summary>
    Unhandled,

    /// <summary>The case did not finish within the time limit.</summary>
    Hang,

    /// <summary>The process died (an abort in native code, a stack overflow).</summary>
    Abort,

    /// <summary>The process grew past the memory limit.</summary>
    Memory,
}

public sealed record FuzzResult(long Case, FuzzOutcome Outcome, string Seed, string Mutations, string Detail, double Milliseconds)
{
    public bool IsDefect => Outcome is FuzzOutcome.Unhandled or FuzzOutcome.Hang or FuzzOutcome.Abort or FuzzOutcome.Memory;
}

/// <summary>
/// One case of the fuzzer, in process: pick a seed model and mutations from (seed, case), write the mutated model
/// into a scratch folder, then load it from there, swap it, save it and run it on a few ids, as the CLI does.
/// </summary>
public sealed class FuzzHarness(FuzzCorpus corpus, string scratch)
{
    private static readonly AttentionRule[] Rules =
    [
        AttentionRule.Parse("window:16"), AttentionRule.Parse("linear-elu"), AttentionRule.Parse("window:16"), AttentionRule.Parse("linear-elu"),
        AttentionRule.Parse("softmax"), AttentionRule.Parse("hybrid:8"), AttentionRule.Parse("segment:4"), AttentionRule.Parse("summary:cumulative"),
    ];

    /// <summary>The Random of a case: the same (seed, case) always gives the same case.</summary>
    public static Random CaseRandom(int seed, long index)
    {
        // SplitMix64 of (seed, case): HashCode is salted per process, and a case must replay in another process.
        var z = unchecked((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)index);
        z = unchecked((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL);
        z = unchecked((z ^ (z >> 27)) * 0x94D049BB133111EBUL);
        return new Random((int)(z ^ (z >> 31)));
    }

    /// <summary>Writes case <paramref name="index"/>'s model into a fresh <paramref name="folder"/> and says what was done.</summary>
    public (string ModelPath, string Seed, string Mutations, Random Rng) Prepare(int seed, long index, string folder)
    {
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.CreateDirectory(folder);
        var rng = CaseRandom(seed, index);
        var picked = corpus.Pick(rng);
        var model = picked.Model.Clone();
        var mutations = FuzzMutator.Mutate(model, rng, folder);
        var bytes = model.ToByteArray();
        if (rng.Next(5) == 0)
        {
            (bytes, var what) = FuzzMutator.MutateBytes(bytes, rng);
            mutations.Add(what);
        }
        var path = Path.Combine(folder, "model.onnx");
        File.WriteAllBytes(path, bytes);
        return (path, picked.Name, string.Join("; ", mutations), rng);
    }

    public FuzzResult Run(int seed, long index)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var folder = Path.Combine(scratch, "case");
        var (path, seedName, mutations, rng) = Prepare(seed, index, folder);
        FuzzOutcome outcome;
        string detail;
        try
        {
            detail = LoadSwapSaveRun(path, folder, rng);
            outcome = FuzzOutcome.Ran;
        }
        catch (GraphException e)
        {
            (outcome, detail) = (FuzzOutcome.Refused, e.Message);
        }
        catch (OnnxRuntimeException e)
        {
            (outcome, detail) = (FuzzOutcome.RefusedByOrt, e.Message);
        }
        catch (Exception e)
        {
            var frame = e.StackTrace?.Split('\n').FirstOrDefault()?.Trim() ?? "";
            (outcome, detail) = (FuzzOutcome.Unhandled, $"{e.GetType().FullName}: {e.Message} {frame}");
        }
        return new FuzzResult(index, outcome, seedName, mutations, OneLine(detail), clock.Elapsed.TotalMilliseconds);
    }

    /// <summary>What the CLI's logits command does, on 1-2 rows of 1-4 small ids, whole or token by token.</summary>
    private static string LoadSwapSaveRun(string path, string folder, Random rng)
    {
        var model = ModelFile.Load(path);
        var rule = Rules[rng.Next(Rules.Length)];
        var report = AttentionSwapper.Swap(model, rule);
        var saved = Path.Combine(folder, "swapped.onnx");
        ModelFile.Save(model, saved);
        var reloaded = ModelFile.Load(saved);
        var batch = 1 + rng.Next(2);
        var seq = 1 + rng.Next(4);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => (long)rng.Next(8)).ToArray();
        using var runner = new SwappedModelRunner(reloaded, intraOpThreads: 1);
        var logits = runner.Logits(ids, batch, rng.Next(2) == 0 ? seq : 1);
        return $"{report.Replaced.Count} layer(s) -> {rule.Spelling}; {logits.Length} logits";
    }

    private static string OneLine(string s)
    {
        var line = string.Join(' ', s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return line.Length > 400 ? line[..400] + "..." : line;
    }
}
