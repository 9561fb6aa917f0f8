using System.CommandLine;
using OnnxAttention.Cli.Commands;

var root = new RootCommand("onnx-attention: constant-memory attention operators for ONNX Runtime");
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(GraphCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(LogitsCommand.Create());
return root.Parse(args).Invoke();
