using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// How a command reports a mistake the user can make (a missing or unreadable file, a file that is not a model, a bad
/// option value, a model we refuse): one line <c>error: ...</c> on stderr and exit code 1, never a stack trace.
/// Anything else is a bug in the program and keeps System.CommandLine's default report.
/// </summary>
public static class CliErrors
{
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsUserError(e))
        {
            Report(e);
            return 1;
        }
    }

    public static bool IsUserError(Exception e) =>
        e is GraphException or FormatException or ArgumentException or InvalidDataException or IOException or UnauthorizedAccessException
            or InvalidProtocolBufferException or OrtException or OnnxRuntimeException or InvalidOperationException;

    public static void Report(Exception e) =>
        Console.Error.WriteLine($"error: {string.Join(' ', e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))}");

    /// <summary>Refuses an output path that names one of the inputs: writing it would destroy the model or the ids being read.</summary>
    public static void RefuseOverwritingAnInput(string outputOption, FileInfo output, params FileInfo[] inputs)
    {
        var target = Resolve(output);
        foreach (var input in inputs)
        {
            if (string.Equals(target, Resolve(input), StringComparison.Ordinal))
            {
                throw new ArgumentException($"{outputOption} '{output.FullName}' is an input of this command; writing it would overwrite that input: choose another path");
            }
        }
    }

    private static string Resolve(FileInfo file)
    {
        // A symbolic link to the input is the input.
        var path = file.Exists && file.LinkTarget is not null ? file.ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? file.FullName : file.FullName;
        return Path.GetFullPath(path);
    }
}
