using System.CommandLine;
using OnnxAttention.Cli.Commands;

// Tables wider than a pipe's default 80 columns stay readable in logs and CI output.
if (Console.IsOutputRedirected) Spectre.Console.AnsiConsole.Profile.Width = 220;

var root = new RootCommand("onnx-attention: constant-memory attention operators for ONNX Runtime");
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(BenchOpsCommand.Create());
root.Subcommands.Add(BenchMemoryCommand.Create());
root.Subcommands.Add(GraphCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(LogitsCommand.Create());
root.Subcommands.Add(TritonCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(CalibrateCommand.Create());
root.Subcommands.Add(GenaiLlamaCommand.Create());
root.Subcommands.Add(GenaiGenerateCommand.Create());
root.Subcommands.Add(BenchGenerateCommand.Create());
root.Subcommands.Add(BenchGenerateCellCommand.Create());
root.Subcommands.Add(BenchDecodeKvCommand.Create());
root.Subcommands.Add(BenchGeneratePairCommand.Create());
root.Subcommands.Add(VerifyOpsCommand.Create());
return root.Parse(args).Invoke();
