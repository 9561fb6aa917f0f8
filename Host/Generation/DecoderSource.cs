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
        if (path is null) return (Build(DefaultCheckpoint.Create()), "built-in tiny Llama (seeded weights)");
        // The extension picks the reader; anything else would be read as a llama2.c header and fail with a message about
        // its numbers rather than about the file.
        if (Directory.Exists(path)) throw new ArgumentException($"model '{path}' is a folder; give the model file (a llama2.c .bin or an exported .onnx)");
        var extension = Path.GetExtension(path);
        if (extension.Equals(".onnx", StringComparison.OrdinalIgnoreCase)) return (ModelFile.Load(path), path);
        if (extension.Equals(".bin", StringComparison.OrdinalIgnoreCase)) return (Build(Llama2cCheckpoint.Load(path)), path);
        throw new ArgumentException($"model '{path}': expected a llama2.c checkpoint (.bin) or an exported decoder (.onnx), got a '{extension}' file");
    }

    /// <summary>
    /// A llama2.c checkpoint's graph in the KV-cache form with a position_ids input (as Hugging Face exports are):
    /// the swap turns position_ids into each row's own positions, so the rows of a batch may be at different
    /// positions (prompts of different lengths). The form without cache computes positions from one Range for all
    /// rows, which the swap can only offset by one shared position.
    /// </summary>
    public static ModelProto Build(Llama2cCheckpoint checkpoint) =>
        LlamaGraphBuilder.Build(checkpoint, new LlamaGraphOptions { KvCache = true, PositionIdsInput = true });
}
