using System.Diagnostics;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// Runs the onnx-attention program in its own process, as a user does: what kills a process (an abort in native code,
/// a stack overflow) or grows it cannot be seen in-process. Records the exit code, what it printed, the wall time and
/// the peak resident memory (VmHWM, read while it runs).
/// </summary>
public static class CliProcess
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr, TimeSpan Elapsed, long PeakBytes);

    public static Result Run(TimeSpan timeout, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "onnx-attention.dll"));
        foreach (var a in arguments) start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start onnx-attention");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        var peak = 0L;
        while (!process.WaitForExit(50))
        {
            peak = Math.Max(peak, PeakResident(process.Id));
            if (clock.Elapsed > timeout)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit();
                throw new TimeoutException($"onnx-attention {string.Join(' ', arguments)} ran longer than {timeout}");
            }
        }
        var elapsed = clock.Elapsed;
        Task.WaitAll([stdout, stderr], TimeSpan.FromSeconds(30));
        return new Result(process.ExitCode, stdout.Result, stderr.Result, elapsed, peak);
    }

    /// <summary>VmHWM of a running process in bytes (0 once it is gone).</summary>
    private static long PeakResident(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }
}
