using System.Diagnostics;
using OnnxAttention.Cli.Commands;

namespace OnnxAttention.Cli.Bench;

/// <summary>
/// Runs <see cref="BenchGenerateCellCommand"/> in a fresh process of this CLI: the apphost or single-file build
/// itself, else the dotnet host with this assembly (which is how `dotnet onnx-attention.dll` and the tests run it).
/// </summary>
internal static class CellProcess
{
    /// <summary>Runs one cell; past <paramref name="timeout"/> the child (and anything it started) is killed and the failure says so.</summary>
    public static (BenchGenerateCellCommand.Measurement? Measurement, string Failure) Run(IReadOnlyList<string> arguments, TimeSpan? timeout = null)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this process is unknown, so bench-generate cannot start its cells");
        var entry = typeof(CellProcess).Assembly.Location;
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (entry.Length > 0 && !Path.GetFileNameWithoutExtension(self).Equals(Path.GetFileNameWithoutExtension(entry), StringComparison.Ordinal))
        {
            start.FileName = Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : "dotnet";
            start.ArgumentList.Add(entry);
        }
        else
        {
            start.FileName = self;
        }
        start.ArgumentList.Add(BenchGenerateCellCommand.Name);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        using var child = Process.Start(start) ?? throw new InvalidOperationException("the bench-generate cell process did not start");
        var error = child.StandardError.ReadToEndAsync();
        var output = child.StandardOutput.ReadToEndAsync();
        if (!child.WaitForExit(timeout ?? Timeout.InfiniteTimeSpan))
        {
            child.Kill(entireProcessTree: true);
            child.WaitForExit();
            return (null, $"not finished within {timeout!.Value.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} s (stopped)");
        }
        child.WaitForExit();
        var measurement = BenchGenerateCellCommand.Parse(output.Result);
        if (child.ExitCode == 0 && measurement is not null) return (measurement, "");
        var why = error.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? $"exit code {child.ExitCode}";
        return (null, why);
    }
}
