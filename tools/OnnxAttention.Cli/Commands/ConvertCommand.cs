using System.CommandLine;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Genai;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention convert MODEL --attention RULE --out OUT.onnx</c>, or <c>--genai OUT_DIR</c>: a model folder that
/// onnxruntime-genai 0.20 runs (see <see cref="GenaiFolder"/>).
/// </summary>
public static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Argument<FileInfo>("model") { Description = "the decoder: an exported .onnx or a llama2.c .bin" };
        var rule = new Option<string>("--attention") { Description = AttentionRule.Known + "; none: write the model unswapped (a .bin as ONNX)", Required = true };
        var output = new Option<FileInfo?>("--out") { Description = "where to write the swapped model" };
        var genai = new Option<DirectoryInfo?>("--genai") { Description = "write an onnxruntime-genai model folder here instead (model.onnx, genai_config.json, the native library, tokenizer files)" };
        var nativeLibrary = new Option<FileInfo?>("--native-library") { Description = "with --genai: libonnxattention.so to copy into the folder (default: artifacts/native/linux-x64/ of this checkout, from ./build-native.sh)" };
        var command = new Command("convert", "Replace every attention of a model with the chosen rule and save it.") { model, rule, output, genai, nativeLibrary };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(genai) is { } folder)
            {
                if (parse.GetValue(output) is not null) throw new ArgumentException("give --out (one .onnx file) or --genai (a genai model folder), not both");
                return WriteGenai(parse.GetValue(model)!, AttentionRule.Parse(parse.GetValue(rule)!), folder, parse.GetValue(nativeLibrary));
            }
            if (parse.GetValue(output) is null) throw new ArgumentException("--out (the swapped .onnx) or --genai (a genai model folder) is required");
            CliErrors.RefuseOverwritingAnInput("--out", parse.GetValue(output)!, parse.GetValue(model)!);
            var proto = ModelArguments.Load(parse.GetValue(model)!.FullName);
            if (parse.GetValue(rule)!.Trim().Equals("none", StringComparison.OrdinalIgnoreCase))
            {
                ModelFile.Save(proto, parse.GetValue(output)!.FullName);
                Console.WriteLine($"attention left as it is ({proto.Graph.Node.Count} nodes)");
                Console.WriteLine($"wrote {parse.GetValue(output)!.FullName}");
                return 0;
            }
            var report = AttentionSwapper.Swap(proto, AttentionRule.Parse(parse.GetValue(rule)!));
            // A model no session could take (or on which ORT would abort) is not written.
            ResourceChecks.Check(proto, SessionMemory.Budget);
            ModelFile.Save(proto, parse.GetValue(output)!.FullName);
            Print(report);
            Console.WriteLine($"wrote {parse.GetValue(output)!.FullName}");
            return 0;
        }));
        return command;
    }

    private static int WriteGenai(FileInfo model, AttentionRule rule, DirectoryInfo folder, FileInfo? nativeLibrary)
    {
        var library = nativeLibrary?.FullName ?? GenaiFolder.FindNativeLibrary()
            ?? throw new FileNotFoundException("the native library is not built: run ./build-native.sh (artifacts/native/linux-x64/libonnxattention.so) or name it with --native-library");
        var sourceDir = model.DirectoryName;
        if (sourceDir is not null && Path.GetFullPath(sourceDir) == folder.FullName.TrimEnd('/'))
        {
            throw new ArgumentException($"--genai '{folder.FullName}' is the model's own folder; writing it would overwrite the model: choose another folder");
        }
        var proto = ModelArguments.Load(model.FullName);
        var (report, kinds) = GenaiFolder.WriteSwapped(proto, rule, folder.FullName, library, sourceDir);
        Print(report);
        Console.WriteLine($"onnxruntime-genai carries the state as: {kinds}; position read from attention_mask");
        Console.WriteLine($"wrote {folder.FullName}: {GenaiFolder.ModelFile}, {GenaiFolder.ConfigFile}, {GenaiFolder.NativeLibraryFile}" +
            string.Concat(GenaiFolder.TokenizerFiles.Where(f => File.Exists(Path.Combine(folder.FullName, f))).Select(f => ", " + f)));
        return 0;
    }

    public static void Print(SwapReport report)
    {
        for (var i = 0; i < report.Replaced.Count; i++)
        {
            var layer = report.Layers[i];
            Console.WriteLine($"layer {i}: {report.Replaced[i].Describe()} -> {layer.Rule.Spelling}; " + (layer.CacheBytesPerToken > 0
                ? $"KV cache {layer.CacheBytesPerToken:N0} bytes per token per sequence"
                : $"state {layer.StateBytesPerSequence:N0} bytes per sequence"));
        }
        foreach (var miss in report.Skipped) Console.WriteLine($"left as it is: {miss.Anchor}: {miss.Reason}");
        foreach (var (rule, count) in report.RuleCounts) Console.WriteLine($"rule '{rule}': {count} change(s)");
        if (report.OpsetChange is { } opset) Console.WriteLine(opset);
        foreach (var change in report.InterfaceChanges) Console.WriteLine(change);
        Console.WriteLine($"removed {report.RemovedNodes} nodes that no longer contribute to the outputs");
        Console.WriteLine($"state per layer carried between calls: {string.Join(", ", report.State.Select(s => $"{s.Past} [{string.Join(", ", s.Declared(present: false).Select(d => d.Value?.ToString() ?? d.Symbol))}]"))}" +
            (report.State.Any(s => s.GrowingAxis is not null) ? $" (a KV cache: the {StateTensor.PastLength} axis grows by the tokens of each call)" : ""));
        if (report.Layers.All(l => l.CacheBytesPerToken == 0)) Console.WriteLine($"state per sequence, all layers: {report.StateBytesPerSequence:N0} bytes, whatever the context length");
        if (report.HasPositionInput) Console.WriteLine($"added input '{PositionOffset.InputName}' (int64, scalar or [batch]): tokens already processed" + (report.PositionsPerRow ? ", per row" : ", one value for all rows"));
    }
}
