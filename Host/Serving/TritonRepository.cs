using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Host.Serving;

/// <summary>
/// Lays out one model of a Triton model repository: <c>NAME/config.pbtxt</c> and <c>NAME/1/model.onnx</c>, the
/// layout Triton's onnxruntime backend loads. The custom-op library itself is not copied: it lives on the server
/// (mounted into the container) at the path the config names.
/// </summary>
public static class TritonRepository
{
    /// <summary>The default place of our library inside a Triton container, matching docs/native-library.md.</summary>
    public const string DefaultLibraryPath = "/opt/onnxattention/libonnxattention.so";

    /// <returns>The model folder written.</returns>
    public static string Write(string repository, string name, ModelProto model, string libraryPath = DefaultLibraryPath)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny(['/', '\\']) >= 0 || name is "." or "..")
        {
            throw new ArgumentException($"model name '{name}' must be a single folder name");
        }
        var folder = Path.Combine(repository, name);
        var config = TritonModelConfig.For(model, name, libraryPath);
        Directory.CreateDirectory(Path.Combine(folder, "1"));
        ModelFile.Save(model, Path.Combine(folder, "1", "model.onnx"));
        File.WriteAllText(Path.Combine(folder, "config.pbtxt"), config);
        return folder;
    }
}
