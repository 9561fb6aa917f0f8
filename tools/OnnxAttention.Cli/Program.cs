using System.CommandLine;
using OnnxAttention.Cli.Commands;

var root = new RootCommand("onnx-attention: constant-memory attention operators for ONNX Runtime");
root.Subcommands.Add(DemoCommand.Create());
return root.Parse(args).Invoke();
