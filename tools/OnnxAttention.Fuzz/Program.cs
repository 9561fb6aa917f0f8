using System.Diagnostics;
using OnnxAttention.Fuzz;

// onnx-attention-fuzz: mutation testing of load -> swap -> save -> run (see README "Reliability").
//   run    --cases N --seed S [--workers W] [--fixtures DIR] [--case-limit-s 60] [--memory-limit-mb 2048] [--scratch DIR] [--log FILE]
//   replay --seed S --case N [--fixtures DIR] --out DIR      (writes the case's model and files into DIR and runs it)
//   worker ...                                               (used by run)
var options = new Dictionary<string, string>(StringComparer.Ordinal);
for (var i = 1; i + 1 < args.Length; i += 2) options[args[i]] = args[i + 1];
string Get(string name, string fallback) => options.GetValueOrDefault(name, fallback);
var command = args.Length > 0 ? args[0] : "help";
var seed = int.Parse(Get("--seed", "1"));
var fixtures = options.TryGetValue("--fixtures", out var f) ? (f == "none" ? null : f) : FuzzCorpus.FindFixtures(AppContext.BaseDirectory) ?? FuzzCorpus.FindFixtures(Environment.CurrentDirectory);
var scratch = Get("--scratch", Path.Combine(Path.GetTempPath(), $"onnx-attention-fuzz-{Environment.ProcessId}"));

switch (command)
{
    case "worker":
        {
            var harness = new FuzzHarness(FuzzCorpus.Build(fixtures), scratch);
            var to = long.Parse(Get("--to", "0"));
            for (var c = long.Parse(Get("--from", "0")); c < to; c++)
            {
                Console.Out.WriteLine($"start {c}");
                Console.Out.Flush();
                Console.Out.WriteLine(FuzzLog.Format(harness.Run(seed, c)));
                Console.Out.Flush();
            }
            return 0;
        }
    case "replay":
        {
            var out_ = Get("--out", Path.Combine(scratch, "replay"));
            var harness = new FuzzHarness(FuzzCorpus.Build(fixtures), out_);
            var result = harness.Run(seed, long.Parse(Get("--case", "0")));
            Console.WriteLine($"case {result.Case}: {result.Outcome} ({result.Milliseconds:F0} ms)\nseed: {result.Seed}\nmutations: {result.Mutations}\n{result.Detail}\nfiles: {Path.Combine(out_, "case")}");
            return result.IsDefect ? 1 : 0;
        }
    case "run":
        {
            var cases = long.Parse(Get("--cases", "1000"));
            var limit = TimeSpan.FromSeconds(double.Parse(Get("--case-limit-s", "60")));
            var memory = long.Parse(Get("--memory-limit-mb", "2048")) << 20;
            Directory.CreateDirectory(scratch);
            using var log = options.TryGetValue("--log", out var logPath) ? new StreamWriter(logPath) : null;
            var counts = Enum.GetValues<FuzzOutcome>().ToDictionary(o => o, _ => 0L);
            var clock = Stopwatch.StartNew();
            // Workers take contiguous ranges of cases; each case depends only on (seed, case), so the split changes nothing.
            var workers = Math.Max(1, int.Parse(Get("--workers", "1")));
            var gate = new Lock();
            var done = 0L;
            void OnFinished(FuzzResult r)
            {
                lock (gate) Finish(r);
            }
            void Finish(FuzzResult r)
            {
                counts[r.Outcome]++;
                done++;
                log?.WriteLine(FuzzLog.Format(r));
                if (r.IsDefect) Console.WriteLine($"DEFECT case {r.Case} {r.Outcome}: {r.Detail}\n  seed {r.Seed}; {r.Mutations}");
                if (done % 1000 == 0)
                {
                    log?.Flush();
                    Console.WriteLine($"{done}/{cases} cases in {clock.Elapsed.TotalSeconds:F0} s: {string.Join(", ", counts.Select(kv => $"{kv.Key} {kv.Value}"))}");
                }
            }
            var threads = Enumerable.Range(0, workers).Select(w =>
            {
                var supervisor = new FuzzSupervisor(seed, cases * w / workers, cases * (w + 1) / workers, limit, memory, fixtures, Path.Combine(scratch, $"w{w}"));
                supervisor.Finished += OnFinished;
                var thread = new Thread(() => supervisor.Run());
                thread.Start();
                return thread;
            }).ToList();
            foreach (var t in threads) t.Join();
            Console.WriteLine($"seed {seed}, {done} cases in {clock.Elapsed.TotalSeconds:F0} s (fixtures: {fixtures ?? "none"})");
            foreach (var (outcome, n) in counts) Console.WriteLine($"  {outcome,-13} {n}");
            try
            {
                Directory.Delete(scratch, recursive: true);
            }
            catch (IOException)
            {
                // a scratch folder left behind is harmless
            }
            return counts.Where(kv => kv.Key is FuzzOutcome.Unhandled or FuzzOutcome.Hang or FuzzOutcome.Abort or FuzzOutcome.Memory).Sum(kv => kv.Value) > 0 ? 1 : 0;
        }
    default:
        Console.Error.WriteLine("usage: onnx-attention-fuzz run --cases N --seed S [--workers W] [--fixtures DIR|none] [--case-limit-s 60] [--memory-limit-mb 2048] [--log FILE]\n" +
                                "       onnx-attention-fuzz replay --seed S --case N [--out DIR]");
        return 2;
}
