using Microsoft.ML.OnnxRuntimeGenAI;

namespace OnnxAttention.Host.Genai;

/// <summary>
/// A model folder loaded by onnxruntime-genai (Microsoft.ML.OnnxRuntimeGenAI 0.20, on ONNX Runtime 1.32): greedy
/// generation for a batch of prompts of one length, with the prefill and the decode steps timed apart. genai runs the
/// folder as its genai_config.json says (its own KV cache and recurrent-state handling, the custom-op library it names).
/// </summary>
public sealed class GenaiModel : IDisposable
{
    private static readonly object HandleLock = new();
    private static OgaHandle? _handle;
    private readonly Model _model;

    private GenaiModel(string directory, Model model)
    {
        Directory = directory;
        _model = model;
    }

    /// <summary>Loads the folder; genai's refusals come back as <see cref="InvalidOperationException"/> with genai's message.</summary>
    public static GenaiModel Open(string directory)
    {
        // genai's library-wide state is torn down by the last OgaHandle; one for the process.
        Genai(() =>
        {
            lock (HandleLock) _handle ??= new OgaHandle();
            return 0;
        });
        return new GenaiModel(directory, Genai(() => new Model(directory)));
    }

    private static T Genai<T>(Func<T> call)
    {
        try
        {
            return call();
        }
        catch (OnnxRuntimeGenAIException e)
        {
            throw new InvalidOperationException($"onnxruntime-genai: {e.Message}", e);
        }
        catch (DllNotFoundException e)
        {
            throw new InvalidOperationException("onnxruntime-genai's native library is not part of this build (the GPU build carries genai's managed API only)", e);
        }
    }

    public string Directory { get; }

    /// <summary>A greedy run: prompt + new tokens per row, and the seconds the prefill and the decode steps took.</summary>
    public sealed record Run(IReadOnlyList<int[]> Sequences, double PrefillSeconds, double DecodeSeconds, int DecodeSteps);

    /// <summary>
    /// Prefills <paramref name="prompts"/> (all of one length) and generates <paramref name="newTokens"/> tokens greedily.
    /// With <paramref name="ignoreEos"/> genai does not stop at the end-of-sequence token (min_length = max_length),
    /// as a benchmark needs.
    /// </summary>
    public Run Generate(IReadOnlyList<IReadOnlyList<int>> prompts, int newTokens, bool ignoreEos = false) =>
        Genai(() => GenerateUnchecked(prompts, newTokens, ignoreEos));

    private Run GenerateUnchecked(IReadOnlyList<IReadOnlyList<int>> prompts, int newTokens, bool ignoreEos)
    {
        if (prompts.Count == 0 || prompts.Select(p => p.Count).Distinct().Count() != 1 || prompts[0].Count == 0)
        {
            throw new ArgumentException("genai runs here take a non-empty batch of prompts of one length (genai pads others on the right, which swapped models do not follow)");
        }
        var length = prompts[0].Count + newTokens;
        using var parameters = new GeneratorParams(_model);
        parameters.SetSearchOption("max_length", length);
        parameters.SetSearchOption("batch_size", prompts.Count);
        parameters.SetSearchOption("do_sample", false);
        if (ignoreEos) parameters.SetSearchOption("min_length", length);
        using var generator = new Generator(_model, parameters);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        generator.AppendTokens(prompts.SelectMany(p => p).ToArray());
        var prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var steps = 0;
        while (!generator.IsDone())
        {
            generator.GenerateNextToken();
            steps++;
        }
        var decode = clock.Elapsed.TotalSeconds;
        var sequences = Enumerable.Range(0, prompts.Count).Select(r => generator.GetSequence((ulong)r).ToArray()).ToList();
        return new Run(sequences, prefill, decode, steps);
    }

    public void Dispose() => _model.Dispose();
}
