using System.CommandLine;
using OnnxAttention.Cli.Commands;

var root = new RootCommand("onnx-attention: constant-memory attention operators for ONNX Runtime");
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(GraphCommand.Create());
root.Subcommands.Add(InspectCommand.Create());
return root.Parse(args).Invoke();
