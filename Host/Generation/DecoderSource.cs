using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Llama2c;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Host.Generation;

/// <summary>Where a decoder comes from: a llama2.c checkpoint, an exported ONNX decoder, or the built-in tiny Llama.</summary>
public static class DecoderSource
{
    /// <summary>The unswapped decoder graph of a .bin (llama2.c) or .onnx file, or of the built-in model when <paramref name="path"/> is null.</summary>
    public static (ModelProto Model, string Description) Read(string? path)
    {
        if (path is null) return (LlamaGraphBuilder.Build(DefaultCheckpoint.Create()), "built-in tiny Llama (seeded weights)");
        return Path.GetExtension(path).Equals(".onnx", StringComparison.OrdinalIgnoreCase)
            ? (ModelFile.Load(path), path)
            : (LlamaGraphBuilder.Build(Llama2cCheckpoint.Load(path)), path);
    }
}
