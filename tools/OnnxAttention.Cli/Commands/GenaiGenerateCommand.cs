using System.CommandLine;
using System.Globalization;
using OnnxAttention.Host.Genai;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention genai-generate DIR --prompt IDS --max-tokens N</c>: greedy generation by onnxruntime-genai 0.20
/// itself from a model folder (one written by <c>genai-llama</c> or <c>convert --genai</c>), to see that genai runs it.
/// </summary>
public static class GenaiGenerateCommand
{
    public static Command Create()
    {
        var folder = new Argument<DirectoryInfo>("folder") { Description = "a genai model folder (genai_config.json, model.onnx)" };
        var prompt = new Option<string[]>("--prompt") { Description = "prompt token ids, space separated; repeat for a batch (different lengths are padded on the right with pad_token_id)", DefaultValueFactory = _ => ["1 17 42 99 3 7"] };
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens to generate per prompt", DefaultValueFactory = _ => 32 };
        var command = new Command("genai-generate", "Generate token ids greedily with onnxruntime-genai from a model folder.") { folder, prompt, maxTokens };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var dir = parse.GetValue(folder)!;
            if (!File.Exists(Path.Combine(dir.FullName, GenaiFolder.ConfigFile)))
            {
                throw new FileNotFoundException($"'{dir.FullName}' has no {GenaiFolder.ConfigFile}: write one with genai-llama or convert --genai");
            }
            var prompts = parse.GetValue(prompt)!.Select(p => (IReadOnlyList<int>)p.Split(' ', StringSplitOptions.RemoveEmptyEntries)
                .Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray()).ToList();
            if (parse.GetValue(maxTokens) < 1) throw new ArgumentException($"--max-tokens must be >= 1, got {parse.GetValue(maxTokens)}");
            using var model = GenaiModel.Open(dir.FullName);
            var run = model.Generate(prompts, parse.GetValue(maxTokens));
            for (var r = 0; r < run.Sequences.Count; r++)
            {
                Console.WriteLine($"[{r}] {string.Join(' ', run.Sequences[r].Skip(prompts[r].Count))}");
            }
            var tokens = run.Sequences.Count * Math.Max(0, run.DecodeSteps);
            Console.WriteLine($"onnxruntime-genai: prefill {prompts.Sum(p => p.Count) / Math.Max(1e-9, run.PrefillSeconds):F0} tokens/s, decode {tokens / Math.Max(1e-9, run.DecodeSeconds):F1} tokens/s");
            return 0;
        }));
        return command;
    }
}
