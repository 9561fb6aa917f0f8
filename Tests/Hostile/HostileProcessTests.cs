using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Hostile;

/// <summary>
/// The hostile files that used to kill or blow up the process (ORT's abort on a Split, the stack overflow of a
/// 5,000-node chain, ORT's 2^31-element Range), run as a user runs them: in a process of their own, watched for
/// its exit code, its output, its time and its peak resident memory.
/// </summary>
[TestFixture]
public class HostileProcessTests
{
    private static readonly string Hostile = Path.Combine(TestPaths.Shared, "fixtures", "hostile");
    private static readonly string Ids = Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", "gpt2-eager-dynamo", "test_data", "input_ids.pb");

    /// <summary>The runtime, ORT and a 2 MB model fit in far less; the Range alone asked for 16 GiB.</summary>
    private const long MemoryBound = 1L << 30;

    [TestCase("01-ort-abort-split-extra-output.onnx", 1, "(Split) has 4 outputs but declares 3 splits")]
    [TestCase("02-stackoverflow-identity-chain-5000.onnx", 0, null)]
    [TestCase("06-ort-memory-range-start.onnx", 1, "(Range) makes a tensor of at least 2147483649 elements")]
    public void LogitsEndsCleanlyInBoundedTimeAndMemory(string file, int exitCode, string? error)
    {
        var output = Path.Combine(Path.GetTempPath(), $"hostile-{Guid.NewGuid():N}.pb");
        try
        {
            var r = CliProcess.Run(TimeSpan.FromSeconds(120), "logits", "--model", Path.Combine(Hostile, file), "--attention", "window:16", "--input-ids", Ids, "--out", output);
            TestContext.Out.WriteLine($"{file}: exit {r.ExitCode} in {r.Elapsed.TotalSeconds:F1} s, peak {r.PeakBytes >> 20} MiB");
            Assert.That(r.ExitCode, Is.EqualTo(exitCode), r.StdOut + r.StdErr);
            Assert.That(r.StdOut + r.StdErr, Does.Not.Contain("   at ").And.Not.Contain("Stack overflow").And.Not.Contain("Assertion"));
            if (error is not null)
            {
                Assert.That(r.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1), r.StdErr);
                Assert.That(r.StdErr, Does.StartWith("error: ").And.Contain(error));
            }
            Assert.That(r.Elapsed, Is.LessThan(TimeSpan.FromSeconds(30)), "time (10 s on a quiet machine)");
            Assert.That(r.PeakBytes, Is.LessThan(MemoryBound), "peak resident memory");
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Test]
    public void AMemoryCapTurnsARunawayAllocationIntoOrtsError()
    {
        // The cap is process-wide in ORT, so it is tried in processes of their own: 64 MiB is enough for the small
        // fixture and its run, 1 MiB is not enough for a batch of long prompts.
        var output = Path.Combine(Path.GetTempPath(), $"capped-{Guid.NewGuid():N}.pb");
        try
        {
            var model = Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", "gpt2-eager-dynamo", "model.onnx");
            var ok = CliProcess.Run(TimeSpan.FromSeconds(120), "logits", "--model", model, "--attention", "window:16", "--input-ids", Ids, "--out", output, "--max-memory", "64M");
            Assert.That(ok.ExitCode, Is.EqualTo(0), ok.StdOut + ok.StdErr);
            // 16 rows of 100 tokens of the built-in tiny Llama: 3 MiB of logits alone.
            var prompt = string.Join(' ', Enumerable.Range(1, 100));
            var tooSmall = CliProcess.Run(TimeSpan.FromSeconds(120), "generate", "--attention", "linear-elu", "--max-tokens", "2", "--batch", "16", "--prompt", prompt, "--max-memory", "1M");
            Assert.That(tooSmall.ExitCode, Is.EqualTo(1), tooSmall.StdOut + tooSmall.StdErr);
            Assert.That(tooSmall.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), Has.Length.EqualTo(1), tooSmall.StdErr);
            Assert.That(tooSmall.StdErr, Does.StartWith("error: ").And.Contain("Available memory of"));
            Assert.That(tooSmall.StdErr, Does.Not.Contain("   at "));
        }
        finally
        {
            File.Delete(output);
        }
    }
}
