using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Cli.Verify;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Verify;

/// <summary>
/// The device check's operator comparison (<c>verify-ops</c>, run by tools/gpu/verify.sh with <c>--ep cuda</c>) run
/// here CPU against CPU: the same code passes every case when both sides are the same kernel, and fails every case
/// when the target's results are moved past the tolerance (in the output or in one state only), so a device report
/// of all PASS means something. Also the conformance part on the CPU, and the CPU build's refusal of CUDA.
/// </summary>
[TestFixture]
[NonParallelizable] // CommandLineRun redirects Console
public class VerifyOpsTests
{
    private static readonly ExecutionTarget Cpu = ExecutionTarget.Cpu;

    private static (int Code, string[] Lines) RunQuick(Func<CallResult, CallResult>? tamper = null, ISet<ActivationType>? types = null, ISet<string>? ops = null)
    {
        using var output = new StringWriter();
        var code = VerifyOpsCommand.Run(Cpu, Cpu, types, ops, quick: true, jobs: 2, conformanceRoot: null, output, tamper);
        return (code, output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private static string[] CaseLines(string[] lines) => [.. lines.Where(l => l.StartsWith("PASS", StringComparison.Ordinal) || l.StartsWith("FAIL", StringComparison.Ordinal))];

    [Test]
    public void EveryOperatorTypeRuleAndScenarioPassesAgainstItself()
    {
        var (code, lines) = RunQuick();
        var rules = ParityRules.For(new ParityShape(2, 4, 2, 16, 16));
        var cases = CaseLines(lines);
        Assert.That(cases, Has.Length.EqualTo(rules.Count * 3 * OperatorParity.Scenarios.Count), string.Join('\n', lines));
        Assert.That(cases.Where(l => !l.StartsWith("PASS", StringComparison.Ordinal)), Is.Empty);
        Assert.That(code, Is.Zero);
        Assert.That(lines[^1], Does.StartWith($"verify-ops: {cases.Length} cases, {cases.Length} passed, 0 failed, 0 open"));
        foreach (var op in new[] { "LinearAttention", "WindowAttention", "HybridAttention", "SegmentAttention", "SummaryAttention" })
        {
            foreach (var type in new[] { "float32", "float16", "bfloat16" })
            {
                foreach (var scenario in OperatorParity.Scenarios)
                {
                    Assert.That(cases.Any(l => l.Contains(op, StringComparison.Ordinal) && l.Contains($"  {type}  {scenario}:", StringComparison.Ordinal)), Is.True,
                        $"no {op} {type} {scenario} case");
                }
            }
        }
    }

    /// <summary>An error of 3 tolerances at one output element fails every case; of half a tolerance at every element, none.</summary>
    [TestCase(3.0, false)]
    [TestCase(0.5, true)]
    public void AnOutputOffByMoreThanTheToleranceFails(double tolerances, bool passes)
    {
        foreach (var type in ActivationValues.All)
        {
            var tolerance = ParityTolerance.For(type);
            // Relative to the element's own size, so the shift is 'tolerances' tolerances whatever the element is.
            CallResult Tamper(CallResult r)
            {
                var output = (float[])r.Output.Clone();
                for (var i = 0; i < (passes ? output.Length : 1); i++)
                {
                    output[i] += (float)(tolerances * (tolerance.Absolute + tolerance.Relative * Math.Abs(output[i])) * 0.98);
                }
                return r with { Output = output };
            }
            var (code, lines) = RunQuick(Tamper, new HashSet<ActivationType> { type }, new HashSet<string> { "WindowAttention", "LinearAttention" });
            var cases = CaseLines(lines);
            Assert.That(cases, Is.Not.Empty);
            Assert.That(cases.All(l => l.StartsWith(passes ? "PASS" : "FAIL", StringComparison.Ordinal)), Is.True, string.Join('\n', cases));
            Assert.That(code, Is.EqualTo(passes ? 0 : 1));
            if (!passes) Assert.That(cases[0], Does.Contain("at output[0]"));
        }
    }

    [Test]
    public void AStateOffByMoreThanTheToleranceFailsEvenWithTheOutputRight()
    {
        static CallResult Tamper(CallResult r)
        {
            var presents = r.Presents.Select(p => p.Copy()).ToList();
            var last = presents.FindLastIndex(p => p.Data is float[] { Length: > 0 });
            ((float[])presents[last].Data)[^1] += 1f;
            return r with { Presents = presents };
        }
        var (code, lines) = RunQuick(Tamper, new HashSet<ActivationType> { ActivationType.BFloat16 });
        var cases = CaseLines(lines);
        Assert.That(cases.Where(l => l.StartsWith("PASS", StringComparison.Ordinal)), Is.Empty, string.Join('\n', cases));
        Assert.That(cases.All(l => l.Contains("at present_", StringComparison.Ordinal)), Is.True, string.Join('\n', cases));
        Assert.That(code, Is.EqualTo(1));
    }

    /// <summary>The padded scenario's mask reaches the operator: outputs at pads are 0, a padded row differs from the
    /// same tokens unpadded (the pads are no keys), an unpadded row is unchanged.</summary>
    [Test]
    public void APaddedCallFeedsItsMaskToTheOperator()
    {
        var shape = new ParityShape(2, 4, 2, 16, 16);
        foreach (var rule in ParityRules.For(shape))
        {
            using var side = new ParitySide(rule, shape, ActivationType.Float32, Cpu, threads: 1);
            var sequence = new ParitySequence(rule, shape, ActivationType.Float32, 40, seed: 7);
            var past = side.Run(sequence, 0, 20, null).Presents;
            var mask = Enumerable.Repeat(1L, 2 * 10).ToArray();
            mask[0] = mask[1] = mask[2] = 0;
            var padded = side.RunMasked(sequence, 20, 10, past, mask).Output;
            var plain = side.Run(sequence, 20, 10, past).Output;
            var width = shape.OutputWidth;
            Assert.That(padded.AsSpan(0, 3 * width).ToArray(), Is.All.Zero, $"{rule}: row 0's pads");
            Assert.That(padded.AsSpan(3 * width, 7 * width).ToArray(), Is.Not.EqualTo(plain.AsSpan(3 * width, 7 * width).ToArray()), $"{rule}: row 0 after its pads");
            Assert.That(padded.AsSpan(10 * width).ToArray(), Is.EqualTo(plain.AsSpan(10 * width).ToArray()), $"{rule}: row 1, no pads");
        }
    }

    [Test]
    public void ConformanceCasesThroughTheSoftmaxRulePassOnTheCpu()
    {
        using var output = new StringWriter();
        var root = Path.Combine(TestPaths.Shared, "conformance", "onnx-v1.22.0-node");
        var code = VerifyOpsCommand.Run(Cpu, Cpu, null, new HashSet<string> { "none" }, quick: true, jobs: 1, root, output);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // 90 cases without a past KV cache: 89 run and pass, one ORT refuses even unswapped; the 38 with a past and a
        // mask the swap refuses (ConformanceSwapTests pins the same split).
        Assert.That(lines[^1], Does.StartWith("conformance: 128 cases, 89 passed, 0 failed, 39 skipped"), string.Join('\n', lines.Where(l => !l.StartsWith("PASS", StringComparison.Ordinal))));
        Assert.That(lines.Count(l => l.Contains("the softmax swap refuses it", StringComparison.Ordinal)), Is.EqualTo(38));
        Assert.That(lines.Single(l => l.Contains("ORT refuses the unswapped model too", StringComparison.Ordinal)), Does.Contain("test_attention_4d_diff_heads_mask4d_padded_kv:"));
        Assert.That(code, Is.Zero);
    }

    [Test]
    public void TheCpuBuildRefusesCudaInOneLine()
    {
        var (code, _, error) = CommandLineRun.Invoke(VerifyOpsCommand.Create(), "--ep", "cuda");
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error.TrimEnd().Split('\n'), Has.Length.EqualTo(1), error);
        Assert.That(error, Does.StartWith("error: --ep cuda:0 needs the GPU build"));
    }
}
