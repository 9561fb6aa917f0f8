using System.CommandLine;
using OnnxAttention.Graphs.Decoders;
using OnnxAttention.Host.Demo;

namespace OnnxAttention.Cli.Commands;

/// <summary><c>onnx-attention demo</c>: builds a small LinearAttention decoder, generates, and checks itself.</summary>
public static class DemoCommand
{
    public static Command Create()
    {
        var prompt = new Option<int>("--prompt-tokens") { Description = "prompt length", DefaultValueFactory = _ => 16 };
        var tokens = new Option<int>("--max-tokens") { Description = "tokens to generate", DefaultValueFactory = _ => 32 };
        var layers = new Option<int>("--layers") { Description = "decoder layers", DefaultValueFactory = _ => 2 };
        var command = new Command("demo", "Build a small decoder graph on the LinearAttention operator, run it in ONNX Runtime, " +
            "prefill + generate token by token carrying the state, and check against one whole-sequence call.")
        {
            prompt, tokens, layers,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(prompt) < 1 || parse.GetValue(tokens) < 0 || parse.GetValue(layers) < 1)
            {
                throw new ArgumentException($"--prompt-tokens must be >= 1, --max-tokens >= 0 and --layers >= 1; got {parse.GetValue(prompt)}, {parse.GetValue(tokens)} and {parse.GetValue(layers)}");
            }
            var config = new TinyDecoderConfig(Layers: parse.GetValue(layers));
            Console.WriteLine($"decoder: {config.Layers} layers, hidden {config.Hidden}, {config.QueryHeads} query heads / " +
                              $"{config.KvHeads} KV heads (head dim {config.HeadDim}), vocab {config.Vocab}, attention com.onnxattention.LinearAttention (elu+1, normalised)");
            var result = new StatefulDecoderDemo(config).Run(parse.GetValue(prompt), parse.GetValue(tokens),
                (i, token) => Console.Write(i == 0 ? $"generated: {token}" : $" {token}"));
            Console.WriteLine();
            Console.WriteLine($"prompt ({result.Prompt.Length} tokens): {string.Join(' ', result.Prompt)}");
            Console.WriteLine($"prefill: {result.PrefillMilliseconds:F2} ms; decode: {result.DecodeTokensPerSecond:F0} tokens/s (1 thread, includes first-call warm-up)");
            Console.WriteLine($"state carried between steps: {result.StateBytesPerSequence} bytes per sequence, whatever the length");
            Console.WriteLine($"max |logits(step by step) - logits(one call)| = {result.MaxLogitDifference:E2}");
            const double limit = 1e-3;
            if (result.MaxLogitDifference > limit)
            {
                Console.Error.WriteLine($"FAIL: step-by-step and whole-sequence logits differ by more than {limit}");
                return 1;
            }
            Console.WriteLine("OK: token-by-token generation with carried state matches the whole-sequence pass.");
            return 0;
        }));
        return command;
    }
}
