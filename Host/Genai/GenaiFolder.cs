using System.Text.Json;
using System.Text.Json.Nodes;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;

namespace OnnxAttention.Host.Genai;

/// <summary>
/// Writes model folders that onnxruntime-genai 0.20 loads: model.onnx, genai_config.json and, for a swapped model,
/// our NativeAOT custom-op library beside them (genai only loads a custom-op library from the model folder or the
/// working directory) and the tokenizer files of the source folder.
/// </summary>
public static class GenaiFolder
{
    public const string ModelFile = "model.onnx", ConfigFile = "genai_config.json", NativeLibraryFile = "libonnxattention.so";

    /// <summary>Files of a Hugging Face / genai tokenizer that travel with the model when the source folder has them.</summary>
    public static readonly string[] TokenizerFiles =
        ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja"];

    /// <summary>The model as the genai builder would write it (no custom operators).</summary>
    public static void WriteOriginal(ModelProto model, GenaiLlamaConfig config, string directory)
    {
        Directory.CreateDirectory(directory);
        SaveModel(model, directory);
        WriteConfig(GenaiConfigJson.Create(config), directory);
    }

    /// <summary>
    /// Swaps <paramref name="source"/> (a genai-form decoder; the model is changed in place) for <paramref name="rule"/>,
    /// gives it genai's interface (<see cref="GenaiInterface"/>) and writes the folder. <paramref name="sourceDirectory"/>:
    /// where the source's genai_config.json and tokenizer files are, if anywhere. Returns what the swap did and how genai carries the state.
    /// </summary>
    public static (SwapReport Report, string StateKinds) WriteSwapped(ModelProto source, AttentionRule rule, string directory, string nativeLibrary, string? sourceDirectory = null)
    {
        if (!File.Exists(nativeLibrary))
        {
            throw new FileNotFoundException($"the native library '{nativeLibrary}' does not exist: build it with ./build-native.sh (or name it with --native-library)");
        }
        var contextLength = CosCacheRows(source);
        var report = AttentionSwapper.Swap(source, rule);
        var kinds = GenaiInterface.Apply(source);
        Directory.CreateDirectory(directory);
        SaveModel(source, directory);
        CopyNativeLibrary(nativeLibrary, directory);

        var given = sourceDirectory is null ? null : Path.Combine(sourceDirectory, ConfigFile);
        JsonNode config;
        if (given is not null && File.Exists(given))
        {
            config = JsonNode.Parse(File.ReadAllText(given)) ?? throw new InvalidDataException($"'{given}' is empty");
            var decoder = config["model"]?["decoder"] as JsonObject ?? throw new InvalidDataException($"'{given}' has no model.decoder");
            decoder["filename"] = ModelFile;
            // The state names GenaiInterface gives; genai derives the recurrent-state names from the key templates.
            var inputs = decoder["inputs"] as JsonObject ?? new JsonObject();
            inputs["past_key_names"] = GenaiLlamaModel.PastKeyTemplate;
            inputs["past_value_names"] = GenaiLlamaModel.PastValueTemplate;
            decoder["inputs"] = inputs;
            var outputs = decoder["outputs"] as JsonObject ?? new JsonObject();
            outputs["present_key_names"] = GenaiLlamaModel.PresentKeyTemplate;
            outputs["present_value_names"] = GenaiLlamaModel.PresentValueTemplate;
            decoder["outputs"] = outputs;
            var options = decoder["session_options"] as JsonObject ?? new JsonObject();
            options["custom_ops_library"] = NativeLibraryFile;
            decoder["session_options"] = options;
        }
        else
        {
            var first = report.Replaced[0];
            var vocab = (int)source.Graph.Output.First(o => o.Name == GenaiLlamaModel.Logits).Type.TensorType.Shape.Dim[2].DimValue;
            config = GenaiConfigJson.Create(vocab, first.QueryHeads * first.HeadDim, first.HeadDim, first.QueryHeads, first.KvHeads,
                report.Replaced.Count, contextLength ?? 2048, ModelFile, NativeLibraryFile);
        }
        WriteConfig(config, directory);
        if (sourceDirectory is not null)
        {
            foreach (var file in TokenizerFiles.Where(f => File.Exists(Path.Combine(sourceDirectory, f))))
            {
                File.Copy(Path.Combine(sourceDirectory, file), Path.Combine(directory, file), overwrite: true);
            }
        }
        return (report, kinds);
    }

    /// <summary>artifacts/native/linux-x64/libonnxattention.so of the checkout this program runs from, if it was built.</summary>
    public static string? FindNativeLibrary()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "artifacts", "native", "linux-x64", NativeLibraryFile);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>
    /// The library, as <see cref="NativeLibraryFile"/>, and the per-instruction-set builds beside it that its loader
    /// picks from at load (build-native.sh, Operators/Native/isa-loader.c).
    /// </summary>
    private static void CopyNativeLibrary(string nativeLibrary, string directory)
    {
        File.Copy(nativeLibrary, Path.Combine(directory, NativeLibraryFile), overwrite: true);
        var source = Path.GetDirectoryName(Path.GetFullPath(nativeLibrary))!;
        foreach (var build in Directory.EnumerateFiles(source, "libonnxattention-x86-64-v*.so"))
        {
            File.Copy(build, Path.Combine(directory, Path.GetFileName(build)), overwrite: true);
        }
    }

    private static void SaveModel(ModelProto model, string directory) => Graphs.Io.ModelFile.Save(model, Path.Combine(directory, ModelFile));

    private static void WriteConfig(JsonNode config, string directory) =>
        File.WriteAllText(Path.Combine(directory, ConfigFile), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>Rows of the GroupQueryAttention cos cache: the positions the model can take.</summary>
    private static int? CosCacheRows(ModelProto model)
    {
        var gqa = model.Graph.Node.FirstOrDefault(n => n.OpType == "GroupQueryAttention" && n.Input.Count > 7 && n.Input[7].Length > 0);
        return gqa is null ? null : model.Graph.Initializer.FirstOrDefault(t => t.Name == gqa.Input[7]) is { Dims.Count: 2 } cos ? (int)cos.Dims[0] : null;
    }
}
