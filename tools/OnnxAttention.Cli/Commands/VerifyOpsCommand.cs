using System.CommandLine;
using OnnxAttention.Cli.Verify;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Cli.Commands;

/// <summary>
/// <c>onnx-attention verify-ops --ep cuda</c>: every operator x activation type x rule on a target against the CPU
/// kernel on the same inputs (prefill, prefill from a past, decode, split, in place), one line per case and a
/// summary; with <c>--conformance DIR</c> also the ONNX Attention node tests through the softmax rule on the target.
/// Exit code 1 when any case fails. tools/gpu/verify.sh runs it on the GPU machine; the tests run it CPU against CPU.
/// </summary>
public static class VerifyOpsCommand
{
    /// <summary>The main shape (grouped heads, 64-wide heads) in every type; the odd one (3 query heads per KV head, head dims
    /// that are no multiple of 16 or 32, key and value widths apart) in float32.</summary>
    public static IReadOnlyList<(ParityShape Shape, IReadOnlyList<ActivationType> Types)> Shapes { get; } =
    [
        (new ParityShape(2, 4, 2, 64, 64), ActivationValues.All),
        (new ParityShape(3, 6, 2, 40, 24), [ActivationType.Float32]),
    ];

    public static Command Create()
    {
        var ep = new Option<string>("--ep") { Description = "the target: cuda, cuda:N (GPU build) or cpu", DefaultValueFactory = _ => "cuda" };
        var reference = new Option<string>("--reference") { Description = "where the reference kernel runs (default cpu)", DefaultValueFactory = _ => "cpu" };
        var types = new Option<string?>("--types") { Description = "comma-separated activation types (default: float32,float16,bfloat16)" };
        var ops = new Option<string?>("--ops") { Description = "comma-separated operators, e.g. WindowAttention,LinearAttention, or none (default: all)" };
        var quick = new Option<bool>("--quick") { Description = "short sequences and 16-wide heads (a smoke test, not the device check)" };
        var jobs = new Option<int>("--jobs") { Description = "cases run at the same time (default 1)", DefaultValueFactory = _ => 1 };
        var conformance = new Option<DirectoryInfo?>("--conformance") { Description = "a folder of ONNX Attention node tests (onnx-v1.22.0-node) to run through the softmax rule on the target" };
        var command = new Command("verify-ops", "Check every operator x type x rule on a target (CUDA) against the CPU kernel, and the ONNX Attention conformance cases through the softmax rule.")
        {
            ep, reference, types, ops, quick, jobs, conformance,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var target = ExecutionTarget.Parse(parse.GetValue(ep)!);
            var against = ExecutionTarget.Parse(parse.GetValue(reference)!);
            CudaBuild.Require(target);
            CudaBuild.Require(against);
            var typeFilter = parse.GetValue(types) is { } t ? t.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(ActivationValues.Parse).ToHashSet() : null;
            var opFilter = parse.GetValue(ops) is { } o ? o.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet(StringComparer.OrdinalIgnoreCase) : null;
            var jobCount = parse.GetValue(jobs);
            if (jobCount < 1) throw new ArgumentException($"--jobs must be at least 1, got {jobCount}");
            var root = parse.GetValue(conformance)?.FullName;
            if (root is not null && !Directory.Exists(root)) throw new DirectoryNotFoundException($"conformance folder '{root}' does not exist");
            return Run(target, against, typeFilter, opFilter, parse.GetValue(quick), jobCount, root, Console.Out);
        }));
        return command;
    }

    public static int Run(ExecutionTarget target, ExecutionTarget reference, ISet<ActivationType>? types, ISet<string>? ops, bool quick, int jobs,
        string? conformanceRoot, TextWriter output, Func<CallResult, CallResult>? tamper = null)
    {
        var lengths = quick ? new ParityLengths(24, 13, 2) : ParityLengths.Device;
        IReadOnlyList<(ParityShape Shape, IReadOnlyList<ActivationType> Types)> shapes = quick ? [(new ParityShape(2, 4, 2, 16, 16), ActivationValues.All)] : Shapes;
        var work = new List<(ParityRule Rule, ActivationType Type, ParityShape Shape)>();
        foreach (var (shape, shapeTypes) in shapes)
        {
            var rules = ParityRules.For(shape).Where(r => ops is null || ops.Contains(r.Operator)).ToList();
            foreach (var type in shapeTypes.Where(x => types is null || types.Contains(x)))
            {
                work.AddRange(rules.Select(r => (r, type, shape)));
            }
        }
        if (work.Count == 0 && conformanceRoot is null) throw new ArgumentException("--ops and --types leave no case to run");
        // A target that cannot run at all (no CUDA driver, no device) is one error line, not a failed line per case.
        var probeShape = new ParityShape(1, 1, 1, 16, 16);
        using (SessionFactory.Create(ParityRules.For(probeShape)[0].Build(ActivationType.Float32, probeShape, withPast: false), 1, target))
        {
        }
        var failed = work.Count == 0 ? 0 : RunOperators(work, lengths, target, reference, jobs, output, tamper);
        var conformanceFailed = conformanceRoot is null ? 0 : RunConformance(conformanceRoot, target, output);
        return failed + conformanceFailed == 0 ? 0 : 1;
    }

    private static int RunOperators(List<(ParityRule Rule, ActivationType Type, ParityShape Shape)> work, ParityLengths lengths, ExecutionTarget target,
        ExecutionTarget reference, int jobs, TextWriter output, Func<CallResult, CallResult>? tamper)
    {
        output.WriteLine($"verify-ops: {target} against {reference}; {work.Count} rule x type x shape combinations x {OperatorParity.Scenarios.Count} scenarios; " +
            $"history {lengths.History}, prefill {lengths.Tokens}, {lengths.DecodeSteps} decode steps; tolerances {ParityTolerance.Float32}, {ParityTolerance.Float16}, {ParityTolerance.BFloat16}");
        var started = DateTime.UtcNow;
        using var gate = new SemaphoreSlim(jobs);
        var tasks = work.Select((w, i) => Task.Run(async () =>
        {
            await gate.WaitAsync().ConfigureAwait(false);
            try
            {
                var parity = new OperatorParity(w.Shape, lengths, reference, target) { Tamper = tamper };
                return parity.Run(w.Rule, w.Type, seed: 1000 + i).ToList();
            }
            finally
            {
                gate.Release();
            }
        })).ToList();
        int passed = 0, failed = 0, open = 0;
        foreach (var task in tasks)
        {
            foreach (var r in task.GetAwaiter().GetResult())
            {
                output.WriteLine(r.Line());
                if (r.Passed) passed++;
                else if (r.Open) open++;
                else failed++;
            }
        }
        output.WriteLine($"verify-ops: {passed + failed + open} cases, {passed} passed, {failed} failed, {open} open (refused as not supported yet) " +
            $"({(DateTime.UtcNow - started).TotalSeconds:0} s)");
        return failed;
    }

    private static int RunConformance(string root, ExecutionTarget target, TextWriter output)
    {
        var started = DateTime.UtcNow;
        int passed = 0, failed = 0, skipped = 0;
        foreach (var name in ConformanceParity.CaseNames(root))
        {
            var r = ConformanceParity.Run(root, name, target);
            output.WriteLine(r.Line());
            if (r.Verdict == "SKIP") skipped++;
            else if (r.Failed) failed++;
            else passed++;
        }
        if (passed + failed + skipped == 0) throw new InvalidDataException($"'{root}' holds no case folder with a model.onnx");
        output.WriteLine($"conformance: {passed + failed + skipped} cases, {passed} passed, {failed} failed, {skipped} skipped " +
            $"(softmax rule on {target}, within 1e-3; {(DateTime.UtcNow - started).TotalSeconds:0} s)");
        return failed;
    }
}
