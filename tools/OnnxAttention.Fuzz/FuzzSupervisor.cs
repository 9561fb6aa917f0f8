using System.Diagnostics;

namespace OnnxAttention.Fuzz;

/// <summary>
/// Runs cases in worker processes, so that a case that aborts the process (native code, a stack overflow), hangs or
/// grows without bound is seen as such and the run goes on with the next case. A worker prints "start N" before
/// case N and one result line after it; the supervisor kills it when a case runs past the time limit or the worker's
/// resident memory passes the limit, and starts a new worker after the case that ended it.
/// </summary>
public sealed class FuzzSupervisor(int seed, long first, long cases, TimeSpan caseLimit, long memoryLimitBytes, string? fixtures, string scratch)
{
    public event Action<FuzzResult>? Finished;

    public List<FuzzResult> Run()
    {
        var results = new List<FuzzResult>();
        var next = first;
        while (next < cases)
        {
            next = RunWorker(next, results);
        }
        return results;
    }

    /// <summary>Runs cases from <paramref name="from"/> in one worker; returns the first case not yet done.</summary>
    private long RunWorker(long from, List<FuzzResult> results)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var entry = typeof(FuzzSupervisor).Assembly.Location;
        if (!Path.GetFileNameWithoutExtension(Environment.ProcessPath!).Equals(Path.GetFileNameWithoutExtension(entry), StringComparison.Ordinal))
        {
            start.ArgumentList.Add(entry); // run through the dotnet host
        }
        foreach (var a in new[] { "worker", "--seed", seed.ToString(), "--from", from.ToString(), "--to", cases.ToString(), "--scratch", scratch })
        {
            start.ArgumentList.Add(a);
        }
        if (fixtures is not null)
        {
            start.ArgumentList.Add("--fixtures");
            start.ArgumentList.Add(fixtures);
        }
        using var worker = Process.Start(start) ?? throw new InvalidOperationException("the worker did not start");
        var lines = new System.Collections.Concurrent.BlockingCollection<string?>();
        // The last lines the worker wrote to stderr: what an abort printed.
        var stderr = new Queue<string>();
        worker.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr)
            {
                stderr.Enqueue(e.Data.Length > 600 ? e.Data[..600] : e.Data);
                if (stderr.Count > 4) stderr.Dequeue();
            }
        };
        worker.BeginErrorReadLine();
        var reader = new Thread(() =>
        {
            while (worker.StandardOutput.ReadLine() is { } line) lines.Add(line);
            lines.Add(null);
        })
        { IsBackground = true };
        reader.Start();

        long? current = null;
        var caseClock = Stopwatch.StartNew();
        var next = from;
        while (true)
        {
            if (lines.TryTake(out var line, 100))
            {
                if (line is null) break;
                if (line.StartsWith("start ", StringComparison.Ordinal))
                {
                    current = long.Parse(line[6..]);
                    caseClock.Restart();
                }
                else if (FuzzLog.Parse(line) is { } result)
                {
                    Record(results, result);
                    current = null;
                    next = result.Case + 1;
                }
                continue;
            }
            if (current is not { } running) continue;
            worker.Refresh();
            var defect = caseClock.Elapsed > caseLimit ? FuzzOutcome.Hang
                : SafeWorkingSet(worker) > memoryLimitBytes ? FuzzOutcome.Memory
                : (FuzzOutcome?)null;
            if (defect is { } d)
            {
                var detail = d == FuzzOutcome.Hang ? $"no result after {caseClock.Elapsed.TotalSeconds:F0} s" : $"resident memory over {memoryLimitBytes >> 20} MiB";
                Kill(worker);
                Record(results, Replayed(running, d, detail, caseClock.Elapsed.TotalMilliseconds));
                return running + 1;
            }
        }
        worker.WaitForExit();
        if (current is { } died)
        {
            var detail = $"worker exited with code {worker.ExitCode}: {LastLines(stderr)}";
            Record(results, Replayed(died, FuzzOutcome.Abort, detail, caseClock.Elapsed.TotalMilliseconds));
            return died + 1;
        }
        if (worker.ExitCode != 0 && next < cases)
        {
            throw new InvalidOperationException($"the worker failed outside any case (exit {worker.ExitCode}): {LastLines(stderr)}");
        }
        return next;
    }

    private void Record(List<FuzzResult> results, FuzzResult result)
    {
        results.Add(result);
        Finished?.Invoke(result);
    }

    /// <summary>A case that ended its worker: its seed and mutations are prepared again here (cheap) so the report says what it was.</summary>
    private FuzzResult Replayed(long index, FuzzOutcome outcome, string detail, double ms)
    {
        try
        {
            var harness = new FuzzHarness(FuzzCorpus.Build(fixtures), Path.Combine(scratch, "replay"));
            var (_, seedName, mutations, _) = harness.Prepare(seed, index, Path.Combine(scratch, "replay", "case"));
            return new FuzzResult(index, outcome, seedName, mutations, detail, ms);
        }
        catch (Exception e)
        {
            return new FuzzResult(index, outcome, "?", $"(not replayed: {e.Message})", detail, ms);
        }
    }

    private static long SafeWorkingSet(Process p)
    {
        try
        {
            return p.HasExited ? 0 : p.WorkingSet64;
        }
        catch (InvalidOperationException)
        {
            return 0;
        }
    }

    private static void Kill(Process p)
    {
        try
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
        }
        catch (InvalidOperationException)
        {
            // already gone
        }
    }

    private static string LastLines(Queue<string> lines)
    {
        lock (lines) return string.Join(" | ", lines.Select(l => l.Trim()));
    }
}
