using System.CommandLine;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Host.Genai;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention genai-llama --size tiny|100m --out DIR</c>: a Llama with seeded weights in the onnxruntime-genai
/// builder's form, with its genai_config.json, ready for genai and for <c>convert --genai</c>.
/// </summary>
public static class GenaiLlamaCommand
{
    public static Command Create()
    {
        var size = new Option<string>("--size") { Description = "tiny (2 layers, hidden 64) or 100m (12 layers, hidden 768, 12 query / 4 KV heads)", DefaultValueFactory = _ => "tiny" };
        var context = new Option<int>("--context-length") { Description = "positions the rotary caches cover (default: 4096 for tiny, 66560 for 100m)", DefaultValueFactory = _ => 0 };
        var seed = new Option<int>("--seed") { Description = "weight seed", DefaultValueFactory = _ => 1234 };
        var output = new Option<DirectoryInfo>("--out") { Description = "the model folder to write (model.onnx, genai_config.json)", Required = true };
        var command = new Command("genai-llama", "Write a Llama with seeded weights in the onnxruntime-genai builder's form, with its genai_config.json.")
        {
            size, context, seed, output,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var config = Config(parse.GetValue(size)!, parse.GetValue(context)) with { Seed = parse.GetValue(seed) };
            var dir = parse.GetValue(output)!.FullName;
            GenaiFolder.WriteOriginal(GenaiLlamaModel.Build(config), config, dir);
            Console.WriteLine($"wrote {dir}: {config.Layers} layers, hidden {config.Hidden}, {config.Heads} query / {config.KvHeads} KV heads, " +
                $"vocabulary {config.Vocab}, {config.Parameters:N0} parameters, context length {config.ContextLength}");
            return 0;
        }));
        return command;
    }

    public static GenaiLlamaConfig Config(string size, int contextLength) => size switch
    {
        "tiny" => contextLength > 0 ? GenaiLlamaConfig.Tiny(contextLength) : GenaiLlamaConfig.Tiny(),
        "100m" => contextLength > 0 ? GenaiLlamaConfig.Bench100M(contextLength) : GenaiLlamaConfig.Bench100M(),
        _ => throw new ArgumentException($"--size must be tiny or 100m, got '{size}'"),
    };
}
