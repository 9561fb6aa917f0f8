using System.CommandLine;
using System.Globalization;
using OnnxAttention.Cli.Bench;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Genai;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention bench-generate-pair</c> (hidden): two bench-generate contenders loaded in one process and run
/// alternately on the same prompts, round after round, each round starting with the other one. bench-generate runs
/// every contender in a process of its own (for its memory figure), so two runs it compares are 10-20 s apart; here
/// they are back to back, which is what a ratio of two speeds on a machine whose load moves needs.
/// </summary>
public static class BenchGeneratePairCommand
{
    public static Command Create()
    {
        var size = new Option<string>("--size") { DefaultValueFactory = _ => "100m", Description = "model: 100m or tiny" };
        var first = new Option<string>("--first") { DefaultValueFactory = _ => "genai-swapped", Description = "contender whose speed is the numerator" };
        var second = new Option<string>("--second") { DefaultValueFactory = _ => "host-linear", Description = "contender whose speed is the denominator" };
        var context = new Option<int>("--context") { DefaultValueFactory = _ => 1024 };
        var batches = new Option<string>("--batches") { DefaultValueFactory = _ => "1,8" };
        var steps = new Option<int>("--decode-tokens") { DefaultValueFactory = _ => 64 };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 6 };
        var chunk = new Option<int>("--prefill-chunk") { DefaultValueFactory = _ => 1024 };
        var linear = new Option<string>("--linear-rule") { DefaultValueFactory = _ => "linear-elu" };
        var window = new Option<string>("--window-rule") { DefaultValueFactory = _ => "window:1024,sinks=4" };
        var nativeLibrary = new Option<FileInfo?>("--native-library");
        var warmup = new Option<int>("--warmup-steps") { DefaultValueFactory = _ => 16 };
        var command = new Command("bench-generate-pair", "Two bench-generate contenders alternated in one process: per-round speed ratios.")
        {
            size, first, second, context, batches, steps, rounds, chunk, linear, window, nativeLibrary, warmup,
        };
        command.Hidden = true;
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var keys = new[] { parse.GetValue(first)!, parse.GetValue(second)! };
            if (keys.FirstOrDefault(k => !GenerateContenders.Keys.Contains(k)) is { } unknown) throw new ArgumentException($"'{unknown}' is not one of {string.Join(", ", GenerateContenders.Keys)}");
            var n = parse.GetValue(context);
            var decode = parse.GetValue(steps);
            var config = GenaiLlamaCommand.Config(parse.GetValue(size)!, 0);
            if (n + decode + 1 > config.ContextLength) config = config with { ContextLength = n + decode + 1 };
            string linearRule = parse.GetValue(linear)!, windowRule = parse.GetValue(window)!;
            var library = parse.GetValue(nativeLibrary)?.FullName ?? GenaiFolder.FindNativeLibrary()
                ?? throw new FileNotFoundException("the native library is not built: run ./build-native.sh or name it with --native-library");
            var work = Directory.CreateTempSubdirectory("onnxattention-bench-pair-").FullName;
            try
            {
                WriteFolders(config, work, library, AttentionRule.Parse(linearRule), keys.Contains("genai-swapped"));
                var loaded = keys.Select(k => GenerateContenders.Load(k, work, windowRule, linearRule, parse.GetValue(chunk))).ToArray();
                if (parse.GetValue(warmup) > 0)
                {
                    // As in bench-generate's cells: no side timed while the .NET JIT compiles it.
                    var warm = GenerateContenders.Prompts(BenchGenerateCellCommand.WarmupPrompt, 1, config.Vocab);
                    foreach (var l in loaded) l.Run(warm, parse.GetValue(warmup));
                }
                try
                {
                    foreach (var batch in parse.GetValue(batches)!.Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)))
                    {
                        var prompts = GenerateContenders.Prompts(n, batch, config.Vocab);
                        var prefillRatios = new List<double>();
                        var decodeRatios = new List<double>();
                        for (var round = 0; round < parse.GetValue(rounds); round++)
                        {
                            var speeds = new (double Prefill, double Decode)[2];
                            foreach (var i in round % 2 == 0 ? new[] { 0, 1 } : [1, 0])
                            {
                                var (p, d) = loaded[i].Run(prompts, decode);
                                speeds[i] = (batch * (double)n / p, batch * (double)decode / d);
                            }
                            prefillRatios.Add(speeds[0].Prefill / speeds[1].Prefill);
                            decodeRatios.Add(speeds[0].Decode / speeds[1].Decode);
                            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                                $"batch {batch}, round {round + 1} ({keys[round % 2]} first): {keys[0]} prefill {speeds[0].Prefill:F0} / decode {speeds[0].Decode:F1}, {keys[1]} prefill {speeds[1].Prefill:F0} / decode {speeds[1].Decode:F1} tokens/s; ratio prefill {prefillRatios[^1]:F3}, decode {decodeRatios[^1]:F3}"));
                        }
                        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"batch {batch}, context {n}, {decode} decode tokens, {parse.GetValue(rounds)} rounds: {keys[0]} / {keys[1]} = prefill {Summary(prefillRatios)}, decode {Summary(decodeRatios)}"));
                    }
                }
                finally
                {
                    foreach (var l in loaded) l.Owner.Dispose();
                }
            }
            finally
            {
                Directory.Delete(work, recursive: true);
            }
            return 0;
        }));
        return command;
    }

    /// <summary>The folders the contenders load, written here so that the model's protobuf is garbage before they load.</summary>
    private static void WriteFolders(GenaiLlamaConfig config, string work, string library, AttentionRule linearRule, bool swapped)
    {
        var model = GenaiLlamaModel.Build(config);
        GenaiFolder.WriteOriginal(model, config, Path.Combine(work, GenerateContenders.OriginalFolder));
        if (swapped) GenaiFolder.WriteSwapped(model, linearRule, Path.Combine(work, GenerateContenders.SwappedFolder), library);
    }

    private static string Summary(List<double> ratios)
    {
        var sorted = ratios.Order().ToArray();
        var median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        return string.Create(CultureInfo.InvariantCulture, $"{median:F3} ({sorted[0]:F3}..{sorted[^1]:F3})");
    }
}
