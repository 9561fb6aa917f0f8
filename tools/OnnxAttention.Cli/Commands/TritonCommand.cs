using System.CommandLine;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;
using OnnxAttention.Host.Serving;

namespace OnnxAttention.Cli.Commands;

/// <summary><c>onnx-attention triton --attention RULE [--model PATH] --out REPOSITORY</c>: a Triton model repository entry.</summary>
public static class TritonCommand
{
    public static Command Create()
    {
        var rule = new Option<string>("--attention") { Description = AttentionRule.Known, DefaultValueFactory = _ => "linear-elu" };
        var model = new Option<FileInfo?>("--model") { Description = "a llama2.c checkpoint (.bin) or an exported decoder (.onnx); default: the built-in tiny Llama" };
        var output = new Option<DirectoryInfo>("--out") { Description = "the model repository folder (created if missing)", Required = true };
        var name = new Option<string>("--name") { Description = "the model's name in the repository", DefaultValueFactory = _ => "decoder" };
        var library = new Option<string>("--library")
        {
            Description = "path of libonnxattention.so as the server sees it (build it with ./build-native.sh)",
            DefaultValueFactory = _ => TritonRepository.DefaultLibraryPath,
        };
        var command = new Command("triton", "Swap a decoder's attention and write it as a Triton Inference Server model (config.pbtxt + 1/model.onnx).")
        {
            rule, model, output, name, library,
        };
        command.SetAction(parse =>
        {
            try
            {
                if (File.Exists(parse.GetValue(output)!.FullName)) throw new ArgumentException($"--out '{parse.GetValue(output)!.FullName}' is a file; give the model repository folder");
                var (proto, source) = DecoderSource.Read(parse.GetValue(model)?.FullName);
                var report = AttentionSwapper.Swap(proto, AttentionRule.Parse(parse.GetValue(rule)!));
                var folder = TritonRepository.Write(parse.GetValue(output)!.FullName, parse.GetValue(name)!, proto, parse.GetValue(library)!);
                Console.WriteLine($"model: {source}; {report.Replaced.Count} attention layers -> {report.Rule.Spelling}");
                Console.WriteLine($"wrote {Path.Combine(folder, "config.pbtxt")} and {Path.Combine(folder, "1", "model.onnx")}");
                Console.WriteLine($"the config loads our operators from {parse.GetValue(library)} on the server: mount artifacts/native/linux-x64 there (docs/native-library.md)");
                return 0;
            }
            catch (Exception e)
            {
                return CliErrors.Fail(e);
            }
        });
        return command;
    }
}
