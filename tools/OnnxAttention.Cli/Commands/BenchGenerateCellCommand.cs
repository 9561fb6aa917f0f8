using System.CommandLine;
using System.Globalization;
using OnnxAttention.Cli.Bench;
using OnnxAttention.Host.Diagnostics;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention bench-generate-cell</c> (hidden): one contender at one (context, batch), run by bench-generate
/// in a child process of its own, so that its peak memory is its own: the resident size after the model is loaded
/// (after a GC and malloc_trim) is the baseline, the high-water mark of the run is the peak. In a process shared by
/// several contenders the figure depended on what ran before (freed pages reused, arenas already grown) and on the
/// .NET GC returning memory mid-run. Prints one line, <see cref="Prefix"/> then key=value pairs.
/// </summary>
public static class BenchGenerateCellCommand
{
    public const string Name = "bench-generate-cell", Prefix = "bench-generate-cell:";

    /// <summary>Prompt tokens per row of the warm-up generation.</summary>
    public const int WarmupPrompt = 32;

    public sealed record Measurement(double PrefillSeconds, double DecodeSeconds, long LoadedBytes, long PeakBytes);

    public static Command Create()
    {
        var work = new Option<string>("--work") { Required = true };
        var contender = new Option<string>("--contender") { Required = true };
        var context = new Option<int>("--context") { Required = true };
        var batch = new Option<int>("--batch") { Required = true };
        var steps = new Option<int>("--decode-tokens") { Required = true };
        var chunk = new Option<int>("--prefill-chunk") { Required = true };
        var vocab = new Option<int>("--vocab") { Required = true };
        var window = new Option<string>("--window-rule") { Required = true };
        var linear = new Option<string>("--linear-rule") { Required = true };
        var warmup = new Option<int>("--warmup-steps") { DefaultValueFactory = _ => 0 };
        var command = new Command(Name, "One bench-generate cell in this process (bench-generate runs it).")
        {
            work, contender, context, batch, steps, chunk, vocab, window, linear, warmup,
        };
        command.Hidden = true;
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var prompts = GenerateContenders.Prompts(parse.GetValue(context), parse.GetValue(batch), parse.GetValue(vocab));
            var loaded = GenerateContenders.Load(parse.GetValue(contender)!, parse.GetValue(work)!, parse.GetValue(window)!, parse.GetValue(linear)!, parse.GetValue(chunk));
            try
            {
                if (parse.GetValue(warmup) > 0)
                {
                    // A short generation first, on prompts of the cell's batch: our Host's kernels are JIT-compiled
                    // (tiered: unoptimised code first, the optimised code compiled in the background after about
                    // 30 calls) while genai runs NativeAOT code and ORT its own, so a cold run would charge the Host
                    // for its compiler. Both sides also get ORT's first-run allocations out of the way.
                    loaded.Run(prompts.Select(p => (IReadOnlyList<int>)p.Take(WarmupPrompt).ToArray()).ToList(), parse.GetValue(warmup));
                }
                // What loading allocated and dropped leaves the resident size before the baseline is read (our
                // Host does this itself after a big load; genai's loading leaves native garbage). Otherwise the run
                // reuses those pages unseen (the window rule read +0 MB at 4k over 1.7 GB loaded).
                ProcessMemory.Compact();
                var loadedBytes = ProcessMemory.Read().ResidentBytes;
                if (!ProcessMemory.ResetPeak()) throw new InvalidOperationException("the kernel does not let this process reset its resident high-water mark (/proc/self/clear_refs)");
                var (prefill, decode) = loaded.Run(prompts, parse.GetValue(steps));
                var peak = ProcessMemory.Read().PeakResidentBytes;
                Console.Out.WriteLine(Format(new Measurement(prefill, decode, loadedBytes, peak)));
                return 0;
            }
            finally
            {
                loaded.Owner.Dispose();
            }
        }));
        return command;
    }

    public static string Format(Measurement m) => string.Create(CultureInfo.InvariantCulture,
        $"{Prefix} prefill_s={m.PrefillSeconds:R} decode_s={m.DecodeSeconds:R} loaded_bytes={m.LoadedBytes} peak_bytes={m.PeakBytes}");

    /// <summary>The measurement in a child's output, or null when no line carries one.</summary>
    public static Measurement? Parse(string output)
    {
        var line = output.Split('\n').LastOrDefault(l => l.StartsWith(Prefix, StringComparison.Ordinal));
        if (line is null) return null;
        var fields = line[Prefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(f => f.Split('=', 2)).ToDictionary(f => f[0], f => f[1]);
        double D(string k) => double.Parse(fields[k], CultureInfo.InvariantCulture);
        long L(string k) => long.Parse(fields[k], CultureInfo.InvariantCulture);
        return new Measurement(D("prefill_s"), D("decode_s"), L("loaded_bytes"), L("peak_bytes"));
    }
}
