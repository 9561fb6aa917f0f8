using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// How the commands read --model and --attention together: a .bin or .onnx file; an unswapped model needs a rule,
/// a model already swapped (by convert or calibrate) runs as it is and refuses a second rule.
/// </summary>
public static class ModelArguments
{
    /// <summary>
    /// A llama2.c checkpoint (.bin) built into its ONNX graph, or any other file read as an ONNX model (with the model
    /// reader's own messages for folders and files that are not models).
    /// </summary>
    public static ModelProto Load(string path) =>
        Path.GetExtension(path).Equals(".bin", StringComparison.OrdinalIgnoreCase) && File.Exists(path) ? DecoderSource.Read(path).Model : ModelFile.Load(path);

    /// <summary>True when <paramref name="model"/> was written by a swap (it carries the swap's metadata).</summary>
    public static bool IsSwapped(ModelProto model) => ModelContract.IsPresent(model);

    /// <summary>The rule an already swapped model records.</summary>
    public static string RecordedRule(ModelProto model) => ModelContract.Read(model).Rule;

    /// <summary>The model ready to run, and a line saying what its attention is.</summary>
    public static (ModelProto Model, string Rules) Swapped(string path, string? rule)
    {
        var proto = Load(path);
        if (IsSwapped(proto))
        {
            if (rule is not null)
            {
                throw new ArgumentException($"model '{path}' is already swapped ({RecordedRule(proto)}); leave out --attention to run it as it is");
            }
            return (proto, $"already swapped: {RecordedRule(proto)}");
        }
        if (rule is null) throw new ArgumentException($"model '{path}' is not swapped; choose a rule with --attention ({AttentionRule.Known})");
        var report = AttentionSwapper.Swap(proto, AttentionRule.Parse(rule));
        return (proto, $"{report.Replaced.Count} attention layer(s) -> {report.Rule.Spelling}");
    }
}
