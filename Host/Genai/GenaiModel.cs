using Microsoft.ML.OnnxRuntimeGenAI;

namespace OnnxAttention.Host.Genai;

/// <summary>
/// A model folder loaded by onnxruntime-genai (Microsoft.ML.OnnxRuntimeGenAI 0.20, on ONNX Runtime 1.32): greedy
/// generation for a batch of prompts (padded on the right when their lengths differ), with the prefill and the decode steps timed apart. genai runs the
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
    /// Prefills <paramref name="prompts"/> and generates <paramref name="newTokens"/> tokens greedily. Prompts of
    /// different lengths are padded on the right with the folder's pad_token_id, as genai's own batch encoding does:
    /// genai masks those columns (attention_mask 0), takes each row's first logits at its last real token and appends
    /// every new token at the same column for all rows. A prompt holding the pad id is refused then, since genai would
    /// mask it too. The sequences returned are each row's prompt followed by its new tokens, without the pads.
    /// With <paramref name="ignoreEos"/> genai does not stop at the end-of-sequence token (min_length = max_length),
    /// as a benchmark needs. With <paramref name="prefillPiece"/> &gt; 0 a single prompt is appended in pieces of that
    /// many tokens, each continuing the cache of the ones before (genai's continuous decoding): ORT's CPU
    /// GroupQueryAttention holds scores for every new token against the whole cache, and genai the logits of every
    /// new token, so one call on a long prompt needs memory that grows with its square and its length. genai takes a
    /// second AppendTokens only at batch 1, so a batch is appended in one call whatever the piece.
    /// </summary>
    public Run Generate(IReadOnlyList<IReadOnlyList<int>> prompts, int newTokens, bool ignoreEos = false, int prefillPiece = 0) =>
        Genai(() => GenerateUnchecked(prompts, newTokens, ignoreEos, prefillPiece));

    /// <summary>The folder's pad_token_id (genai_config.json, model.pad_token_id), 0 when it names none.</summary>
    public int PadTokenId()
    {
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(Directory, GenaiFolder.ConfigFile)));
        return config?["model"]?["pad_token_id"]?.GetValue<int>() ?? 0;
    }

    private Run GenerateUnchecked(IReadOnlyList<IReadOnlyList<int>> prompts, int newTokens, bool ignoreEos, int prefillPiece)
    {
        if (prefillPiece < 0) throw new ArgumentOutOfRangeException(nameof(prefillPiece), prefillPiece, "a prefill piece is a positive number of tokens, or 0 for one call");
        if (prompts.Count == 0 || prompts.Any(p => p.Count == 0))
        {
            throw new ArgumentException("genai runs here take a non-empty batch of non-empty prompts");
        }
        var columns = prompts.Max(p => p.Count);
        var pad = PadTokenId();
        if (prompts.Any(p => p.Count != columns) && prompts.Select((p, r) => (p, r)).FirstOrDefault(x => x.p.Contains(pad)) is { p: not null } holder)
        {
            throw new ArgumentException($"prompt {holder.r} holds the pad id {pad}, which genai masks out of a padded batch; give prompts of one length or without it");
        }
        var length = columns + newTokens;
        using var parameters = new GeneratorParams(_model);
        parameters.SetSearchOption("max_length", length);
        parameters.SetSearchOption("batch_size", prompts.Count);
        parameters.SetSearchOption("do_sample", false);
        if (ignoreEos) parameters.SetSearchOption("min_length", length);
        using var generator = new Generator(_model, parameters);
        var padded = prompts.SelectMany(p => p.Concat(Enumerable.Repeat(pad, columns - p.Count))).ToArray();
        var piece = prompts.Count == 1 && prefillPiece > 0 ? prefillPiece : padded.Length;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var start = 0; start < padded.Length; start += piece)
        {
            generator.AppendTokens(padded.AsSpan(start, Math.Min(piece, padded.Length - start)));
        }
        var prefill = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var steps = 0;
        while (!generator.IsDone())
        {
            generator.GenerateNextToken();
            steps++;
        }
        var decode = clock.Elapsed.TotalSeconds;
        var sequences = Enumerable.Range(0, prompts.Count).Select(r => prompts[r].Concat(generator.GetSequence((ulong)r).ToArray().Skip(columns)).ToArray()).ToList();
        return new Run(sequences, prefill, decode, steps);
    }

    public void Dispose() => _model.Dispose();
}
