using System.Globalization;
using System.Text.RegularExpressions;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>calibrate --plan and --tune-steps: the written model is what was tuned, its KL is what eval measures.</summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class TuneCliTests : StoriesCliFixture
{
    [Test]
    public void TuningAGivenPlanLowersItsKlAndEvalOfTheWrittenModelReproducesIt()
    {
        var ids = Ids();
        var output = Path.Combine(Dir, "tuned.onnx");
        var (code, text, error) = CommandLineRun.Invoke(CalibrateCommand.Create(), ["--model", Stories, "--calibration", ids, "--state-budget", "20000",
            "--plan", "window:4@0;linear-hedgehog:2@1-3;hybrid-hedgehog:3,2@4", "--fit-steps", "5", "--from", "16",
            "--tune-steps", "12", "--tune-rate", "0.01", "--tune-projections", "--out", output]);
        Assert.That(code, Is.Zero, error);
        var before = Number(text, @"at positions 16-31: ([0-9.]+) nats before tuning");
        var after = Number(text, @"KL at positions 16-31: [0-9.]+ -> ([0-9.]+) nats");
        Assert.That(after, Is.LessThan(before), text);
        Assert.That(text, Does.Contain("weights differ from the original's"));
        Assert.That(ModelFile.Load(output).Graph.Initializer.Any(t => t.Name == "layers.0.wq.weight"), Is.True);

        (code, _, error) = CommandLineRun.Invoke(EvalCommand.Create(), ["--model", Stories, "--input-ids", ids, "--swapped", output, "--bucket", "16", "--out", Dir]);
        Assert.That(code, Is.Zero, error);
        var row = File.ReadAllLines(Path.Combine(Dir, "eval.csv")).Skip(1).Select(l => l.Split(',')).Last();
        Assert.That(double.Parse(row[^5], CultureInfo.InvariantCulture), Is.EqualTo(after).Within(1e-4), "eval of the written model, positions 16-31");
    }

    [Test]
    public void EvalCountsAFloat16StateAtTwoBytesAnElement()
    {
        var ids = Ids();
        var (code, _, error) = CommandLineRun.Invoke(EvalCommand.Create(), ["--model", Stories, "--input-ids", ids, "--attention", "window:4",
            "--attention", "window:4,state=float16", "--bucket", "32", "--out", Dir]);
        Assert.That(code, Is.Zero, error);
        var bytes = File.ReadAllLines(Path.Combine(Dir, "eval.csv")).Skip(1).Select(l => l.Split(',')[^8]).ToList(); // the rule's name may hold commas (quoted)
        // 5 layers x keys and values x 4 KV heads x 4 positions x 8 dims.
        Assert.That(bytes, Is.EqualTo(new[] { "5120", "2560" }));
    }

    [Test]
    public void TuningOptionsAreChecked()
    {
        var ids = Ids();
        string[] Args(params string[] extra) => ["--model", Stories, "--calibration", ids, "--state-budget", "20000", "--out", Path.Combine(Dir, "x.onnx"), .. extra];
        var (code, _, error) = CommandLineRun.Invoke(CalibrateCommand.Create(), Args("--tune-projections"));
        Assert.That((code, error), Is.EqualTo((1, error)));
        Assert.That(error, Does.Contain("--tune-projections needs --tune-steps"));
        (code, _, error) = CommandLineRun.Invoke(CalibrateCommand.Create(), Args("--plan", "window:4@0-2"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("gives layer 3 no rule"));
        (code, _, error) = CommandLineRun.Invoke(CalibrateCommand.Create(), Args("--plan", "window:64@*"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("over --state-budget 20000"));
        Assert.That(File.Exists(Path.Combine(Dir, "x.onnx")), Is.False);
    }
}
