using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// How a command ends on an exception. A mistake the user can make (a missing or unreadable file, a file that is not a
/// model, a bad option value, a model we refuse) is one line <c>error: ...</c> on stderr and exit code 1, never a stack
/// trace. Anything else is a bug in the program (a null dereference, an index or argument out of range from our own
/// code, a bad cast, a disposed object): it says so, prints the stack trace and exits with <see cref="BugExitCode"/>.
/// </summary>
public static class CliErrors
{
    /// <summary>EX_SOFTWARE of sysexits.h: an internal error, distinct from the user errors' 1.</summary>
    public const int BugExitCode = 70;

    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e)
        {
            return Fail(e);
        }
    }

    /// <summary>Reports <paramref name="e"/> as a user error (exit code 1) or as a bug (<see cref="BugExitCode"/>).</summary>
    public static int Fail(Exception e)
    {
        if (IsUserError(e))
        {
            Report(e);
            return 1;
        }
        Console.Error.WriteLine($"internal error (a bug in onnx-attention, not in what you asked; please report it): {e}");
        return BugExitCode;
    }

    /// <summary>
    /// The exceptions our checks and the libraries we call throw for bad input: our own exception types, and exact types
    /// where the family also holds bugs (ArgumentException but not ArgumentNullException or ArgumentOutOfRangeException,
    /// InvalidOperationException but not ObjectDisposedException).
    /// </summary>
    public static bool IsUserError(Exception e) =>
        e.GetType() == typeof(ArgumentException) || e.GetType() == typeof(InvalidOperationException) || IsOurs(e)
            || e is FormatException or InvalidDataException or IOException or UnauthorizedAccessException
                or InvalidProtocolBufferException or OnnxRuntimeException;

    /// <summary>Thrown on purpose by one of our checks (GraphException, OrtException, ExecutionProviderUnavailableException, ...).</summary>
    private static bool IsOurs(Exception e) => e.GetType().Namespace?.StartsWith("OnnxAttention.", StringComparison.Ordinal) == true;

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
