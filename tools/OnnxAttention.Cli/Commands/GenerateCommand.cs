using System.CommandLine;
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Host.Tokenization;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention generate --attention RULE --max-tokens N [--model PATH] [--prompt IDS ...]</c>: the main job. Several
/// --prompt (or --text) options make one batch; prompts of different lengths need a state-based rule. --ep cuda runs
/// it on ORT's CUDA provider (GPU build), with the state in device memory.
/// </summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var rule = new Option<string?>("--attention") { Description = AttentionRule.Known + " (default linear-elu; leave it out for a model already swapped, which runs as it is)" };
        var saveIds = new Option<FileInfo?>("--save-ids") { Description = "write each row's prompt + generated ids as an int64 TensorProto [rows, length] (for eval and calibrate)" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "tokens to generate per prompt", DefaultValueFactory = _ => 64 };
        var model = new Option<FileInfo?>("--model") { Description = "a llama2.c checkpoint (.bin) or an exported decoder (.onnx); default: the built-in tiny Llama" };
        var prompt = new Option<string[]>("--prompt") { Description = "prompt token ids, space separated; repeat the option for a batch of prompts (lengths may differ)", DefaultValueFactory = _ => ["1 403 407 261 378 293"] };
        var batch = new Option<int>("--batch") { Description = "copies of each prompt generated side by side (each row with its own seed)", DefaultValueFactory = _ => 1 };
        var temperature = new Option<float>("--temperature") { Description = "0: greedy", DefaultValueFactory = _ => 0f };
        var topK = new Option<int>("--top-k") { Description = "keep the k most likely tokens (0: all)", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "keep the smallest set reaching this probability", DefaultValueFactory = _ => 1f };
        var seed = new Option<int>("--seed") { Description = "sampling seed", DefaultValueFactory = _ => 0 };
        var stop = new Option<string>("--stop") { Description = "stop token ids, space separated", DefaultValueFactory = _ => "" };
        var tokenizer = new Option<FileInfo?>("--tokenizer") { Description = "the model's tokenizer: a folder with vocab.json + merges.txt, or a SentencePiece .model" };
        var text = new Option<string[]>("--text") { Description = "prompt text (needs --tokenizer); replaces --prompt; repeat for a batch" };
        var threads = new Option<int>("--threads") { Description = "ORT intra-op threads (0: ORT's default)", DefaultValueFactory = _ => 0 };
        var maxMemory = new Option<string?>("--max-memory") { Description = "cap ONNX Runtime's CPU memory for the session (bytes, or 512M, 2G; at most 4G - 1); without it, a statically known tensor over 4 GiB is refused" };
        var ep = new Option<string>("--ep") { Description = "execution provider: cpu, cuda or cuda:N (cuda needs the GPU build)", DefaultValueFactory = _ => "cpu" };
        var command = new Command("generate", "Generate token ids with constant-memory attention swapped into a decoder at load time.")
        {
            rule, maxTokens, model, prompt, batch, temperature, topK, topP, seed, stop, tokenizer, text, threads, ep, saveIds, maxMemory,
        };
        command.SetAction(parse =>
        {
            try
            {
                var spelled = parse.GetValue(rule);
                var attention = spelled is null ? null : AttentionRule.Parse(spelled);
                if (parse.GetValue(maxMemory) is { } cap) SessionMemory.Cap(SessionMemory.ParseSize(cap));
                if (parse.GetValue(batch) < 1) throw new ArgumentException($"--batch must be >= 1, got {parse.GetValue(batch)}");
                if (parse.GetValue(threads) < 0) throw new ArgumentException($"--threads must be >= 0 (0: ORT's default), got {parse.GetValue(threads)}");
                var target = ExecutionTarget.Parse(parse.GetValue(ep)!);
                CudaBuild.Require(target);
                var clock = Stopwatch.StartNew();
                using var decoder = OpenDecoder(parse.GetValue(model)?.FullName, attention, parse.GetValue(threads), target);
                var load = clock.Elapsed.TotalMilliseconds;
                var words = parse.GetValue(tokenizer) is { } tokenizerPath ? TokenizerLoader.Load(tokenizerPath.FullName) : null;
                var promptTexts = parse.GetValue(text) ?? [];
                if (promptTexts.Length > 0 && words is null) throw new ArgumentException("--text needs --tokenizer");
                var prompts = promptTexts.Length > 0
                    ? promptTexts.Select(t => TokenizerLoader.Encode(words!, t, decoder.Vocab).ToArray()).ToArray()
                    : parse.GetValue(prompt)!.Select(Ints).ToArray();
                var copies = parse.GetValue(batch);
                // Each prompt's copies side by side: rows p * copies .. p * copies + copies - 1.
                var rowPrompts = prompts.SelectMany(p => Enumerable.Repeat(p, copies)).ToArray();
                var rows = rowPrompts.Length;
                var parameters = new GeneratorParams(parse.GetValue(maxTokens), Ints(parse.GetValue(stop)!).ToHashSet(),
                    new SamplingOptions(parse.GetValue(temperature), parse.GetValue(topK), parse.GetValue(topP), parse.GetValue(seed)));

                var layers = decoder.Report.Replaced.Count > 0 ? $"{decoder.Report.Replaced.Count} attention layers -> {decoder.Report.Rule.Spelling}"
                    : $"already swapped: {decoder.Info.Rule}";
                Console.WriteLine($"model: {decoder.Source}; {layers}; " +
                                  (decoder.CacheBytesPerToken > 0
                                      ? $"KV cache {decoder.CacheBytesPerToken:N0} bytes per token per sequence (grows with the length)"
                                      : $"state {decoder.StateBytesPerSequence:N0} bytes per sequence (constant)") + $"; loaded in {load:F0} ms");
                Console.WriteLine($"runtime: {decoder.Runtime}");
                for (var p = 0; p < prompts.Length; p++) Console.WriteLine($"prompt{(prompts.Length > 1 ? $" {p}" : "")}: {string.Join(' ', prompts[p])}");
                var ids = rowPrompts[0];
                using var generator = new Generator(decoder, parameters, rowPrompts);
                if (rows == 1 && words is null) generator.TokenGenerated += (_, t) => Console.Write($"{t} ");
                if (rows == 1 && words is not null)
                {
                    // Decode what has been generated so far and print only the new part: a token may change how its neighbours render.
                    var shown = "";
                    generator.TokenGenerated += (_, _) =>
                    {
                        var textSoFar = words.Decode(generator.Sequence(0).Skip(ids.Length)) ?? "";
                        if (textSoFar.StartsWith(shown, StringComparison.Ordinal)) Console.Write(textSoFar[shown.Length..]);
                        shown = textSoFar;
                    };
                }
                clock.Restart();
                generator.Prefill();
                var prefill = clock.Elapsed.TotalSeconds;
                clock.Restart();
                try
                {
                    while (!generator.IsDone) generator.GenerateNextToken();
                }
                catch (Exception e) when (e is OnnxRuntimeException or OrtException)
                {
                    // A model that fails part-way (typically a learned position table that ends) names a node and an
                    // index; say where in the generation that happened, on a line of its own after the streamed tokens.
                    Console.WriteLine();
                    throw new InvalidOperationException($"the model failed after {generator.GeneratedTokens} generated tokens " +
                                                        $"(prompt of {rowPrompts.Max(p => p.Length)} tokens): {e.Message}", e);
                }
                var decode = clock.Elapsed.TotalSeconds;
                Console.WriteLine();
                if (rows > 1)
                {
                    for (var r = 0; r < rows; r++)
                    {
                        var generated = generator.Sequence(r).Skip(rowPrompts[r].Length).ToList();
                        Console.WriteLine($"[{r}] {(words is null ? string.Join(' ', generated) : words.Decode(generated))}");
                    }
                }
                var tokens = generator.GeneratedTokens * rows;
                var promptTokens = rowPrompts.Sum(p => p.Length);
                if (parse.GetValue(saveIds) is { } idsFile) SaveIds(idsFile.FullName, generator, rows);
                Console.WriteLine($"prefill: {promptTokens} tokens in {prefill * 1e3:F1} ms ({promptTokens / prefill:F0} tokens/s); " +
                                  $"decode: {tokens} tokens in {decode * 1e3:F1} ms ({(decode > 0 ? tokens / decode : 0):F0} tokens/s)");
                return 0;
            }
            catch (Exception e)
            {
                return CliErrors.Fail(e);
            }
        });
        return command;
    }

    /// <summary>An already swapped model runs as it is; anything else is swapped for the rule (linear-elu by default).</summary>
    private static SwappedDecoder OpenDecoder(string? model, AttentionRule? attention, int threads, ExecutionTarget target)
    {
        if (model is null) return DecoderModel.Default(attention ?? DefaultRule, threads, target);
        // The Host reads the file itself, so the protobuf is garbage once the session exists and its memory goes back.
        return DecoderModel.Load(() => DecoderSource.Read(model), proto => !ModelArguments.IsSwapped(proto) ? attention ?? DefaultRule
            : attention is null ? null
            : throw new ArgumentException($"model '{model}' is already swapped ({ModelArguments.RecordedRule(proto)}); leave out --attention to run it as it is"), threads, target);
    }

    private static readonly AttentionRule DefaultRule = new LinearRule("elu_plus_one");

    /// <summary>Rows stopped at different lengths (stop tokens) are cut to the shortest, so the ids stay one rectangle.</summary>
    private static void SaveIds(string path, Generator generator, int rows)
    {
        var length = Enumerable.Range(0, rows).Min(r => generator.Sequence(r).Count);
        var ids = Enumerable.Range(0, rows).SelectMany(r => generator.Sequence(r).Take(length).Select(t => (long)t)).ToArray();
        Host.Quality.IdsFile.Write(path, ids, rows);
        Console.WriteLine($"wrote ids [{rows}, {length}] to {path}");
    }

    private static int[] Ints(string text) =>
        text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => int.TryParse(s, out var v) ? v : throw new FormatException($"'{s}' is not a token id")).ToArray();
}
