using System.Diagnostics;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.NativeRuntime;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>generate ... --ort-library PATH [--ep cpu|cuda] [--cuda-plugin PATH]</c>: the same generation through the ORT
/// C API of the given libonnxruntime.so (<see cref="NativeGenerator"/>) instead of the managed binding. This is the
/// route to CUDA with ORT 1.29 and its plugin EP library; the CUDA part was NOT RUN where it was written (no GPU).
/// </summary>
public static class NativeGenerate
{
    public sealed record Request(
        string OrtLibrary, string Ep, string? CudaPlugin, AttentionRule Rule, string? Model, int[][] Prompts, int Copies,
        GeneratorParams Parameters, int Threads);

    public static int Run(Request request)
    {
        try
        {
            var settings = NativeSessionSettings.Parse(request.Ep, request.CudaPlugin, request.Threads);
            var library = OrtLibrary.Load(request.OrtLibrary);
            var clock = Stopwatch.StartNew();
            using var decoder = NativeDecoder.Load(library, request.Model, request.Rule, settings);
            var load = clock.Elapsed.TotalMilliseconds;
            Console.WriteLine($"model: {decoder.Source}; {decoder.Report.Replaced.Count} attention layers -> {request.Rule.Spelling}; " +
                              (decoder.CacheBytesPerToken > 0
                                  ? $"KV cache {decoder.CacheBytesPerToken:N0} bytes per token per sequence (grows with the length)"
                                  : $"state {decoder.StateBytesPerSequence:N0} bytes per sequence (constant)") + $"; loaded in {load:F0} ms");
            // Each prompt's copies side by side, as the managed path does; this generator needs equal prompt lengths.
            var rowPrompts = request.Prompts.SelectMany(p => Enumerable.Repeat<IReadOnlyList<int>>(p, request.Copies)).ToList();
            var rows = rowPrompts.Count;
            using var generator = new NativeGenerator(decoder, request.Parameters, rowPrompts);
            Console.WriteLine($"runtime: ONNX Runtime {library.Version} through its C API ({library.Path}); {settings.Provider}; state in {generator.StateMemory} memory");
            for (var p = 0; p < request.Prompts.Length; p++)
            {
                Console.WriteLine($"prompt{(request.Prompts.Length > 1 ? $" {p}" : "")}: {string.Join(' ', request.Prompts[p])}");
            }
            if (rows == 1) generator.TokenGenerated += (_, t) => Console.Write($"{t} ");
            clock.Restart();
            generator.Prefill();
            var prefill = clock.Elapsed.TotalSeconds;
            clock.Restart();
            while (!generator.IsDone) generator.GenerateNextToken();
            var decode = clock.Elapsed.TotalSeconds;
            Console.WriteLine();
            if (rows > 1)
            {
                for (var r = 0; r < rows; r++)
                {
                    Console.WriteLine($"[{r}] {string.Join(' ', generator.Sequence(r).Skip(rowPrompts[r].Count))}");
                }
            }
            var tokens = generator.GeneratedTokens * rows;
            var prompted = rowPrompts.Sum(p => p.Count);
            Console.WriteLine($"prefill: {prompted} tokens in {prefill * 1e3:F1} ms ({prompted / prefill:F0} tokens/s); " +
                              $"decode: {tokens} tokens in {decode * 1e3:F1} ms ({(decode > 0 ? tokens / decode : 0):F0} tokens/s)");
            return 0;
        }
        catch (Exception e) when (e is GraphException or FormatException or ArgumentException or InvalidDataException
                                      or FileNotFoundException or OrtException or InvalidOperationException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}
