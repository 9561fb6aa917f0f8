using System.Diagnostics;

namespace OnnxAttention.Tests.Native;

/// <summary>Runs a program to completion and keeps what it printed.</summary>
public static class ExternalProcess
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        public string Tail(int chars = 4000)
        {
            var all = $"{StdOut}\n{StdErr}".Trim();
            return all.Length <= chars ? all : "..." + all[^chars..];
        }
    }

    public static Result Run(string fileName, IEnumerable<string> arguments, TimeSpan timeout,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) start.Environment[k] = v;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {fileName}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{fileName} {string.Join(' ', start.ArgumentList)} ran longer than {timeout}");
        }
        // A grandchild that outlives the program (a build server) could hold the pipes open: don't wait on it forever.
        Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(30));
        return new Result(process.ExitCode, Text(stdout), Text(stderr));
    }

    private static string Text(Task<string> output) => output.IsCompletedSuccessfully ? output.Result : "(output not closed)";

    /// <summary>The full path of a program on PATH, or null.</summary>
    public static string? Find(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, program))
            .FirstOrDefault(File.Exists);
}
