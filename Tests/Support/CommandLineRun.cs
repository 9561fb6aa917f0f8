using System.CommandLine;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// Runs a command of the onnx-attention program as a user would (parsed arguments, exit code) and captures what it
/// prints. It redirects the process-wide Console, so fixtures that use it must be [NonParallelizable].
/// </summary>
public static class CommandLineRun
{
    public static (int Code, string Out, string Err) Invoke(Command command, params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        using var output = new StringWriter();
        using var error = new StringWriter();
        Console.SetOut(output);
        Console.SetError(error);
        try
        {
            var code = command.Parse(args).Invoke();
            return (code, output.ToString(), error.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
