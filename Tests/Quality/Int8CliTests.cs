using System.Globalization;
using System.Text.RegularExpressions;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>state=int8 through the CLI: eval's bytes, calibrate's --state-types int8 search, and --plan with int8 layers tuned end to end.</summary>
[TestFixture]
public class Int8CliTests : StoriesCliFixture
{
    [Test]
    public void EvalCountsAnInt8CacheAtOneByteAValuePlusItsScales()
    {
        var ids = Ids();
        var (code, _, error) = CommandLineRun.Invoke(EvalCommand.Create(), ["--model", Stories, "--input-ids", ids, "--attention", "window:4,state=float16",
            "--attention", "window:4,state=int8", "--bucket", "32", "--out", Dir]);
        Assert.That(code, Is.Zero, error);
        var bytes = File.ReadAllLines(Path.Combine(Dir, "eval.csv")).Skip(1).Select(l => l.Split(',')[^8]).ToList();
        // 5 layers x keys and values x 4 KV heads x 4 positions x (8 float16 | 8 int8 + one float16 scale).
        Assert.That(bytes, Is.EqualTo(new[] { "2560", "1600" }));
    }

    [Test]
    public void CalibrateSearchesInt8Candidates()
    {
        var ids = Ids();
        var output = Path.Combine(Dir, "cal.onnx");
        var (code, text, error) = CommandLineRun.Invoke(CalibrateCommand.Create(), ["--model", Stories, "--calibration", ids, "--state-budget", "2048",
            "--from", "0", "--moves", "2", "--fit", "none", "--state-types", "int8", "--id-windows", "none", "--out", output]);
        Assert.That(code, Is.Zero, error);
        var contract = ModelContract.Read(ModelFile.Load(output));
        Assert.That(contract.State.Select(s => s.ElementType).Distinct(), Is.EquivalentTo(new[] { TensorProto.Types.DataType.Int8, TensorProto.Types.DataType.Float16 }),
            "int8 codes with float16 scales (and float16 sums)");
        var bytes = contract.State.Sum(s => s.BytesPerRow);
        Assert.That(bytes, Is.LessThanOrEqualTo(2048));
        Assert.That(text, Does.Contain($"state per sequence: {bytes:N0} bytes (budget 2,048)"));
        Assert.That(text, Does.Contain("state=int8"));
    }

    [Test]
    public void AnInt8PlanTunedEndToEndIsWhatEvalMeasures()
    {
        var ids = Ids();
        var output = Path.Combine(Dir, "tuned.onnx");
        var (code, text, error) = CommandLineRun.Invoke(CalibrateCommand.Create(), ["--model", Stories, "--calibration", ids, "--state-budget", "20000",
            "--plan", "window:4,state=int8@0;linear-hedgehog:2,state=float16@1-3;hybrid-hedgehog:3,2,state=int8@4", "--fit-steps", "5", "--from", "16",
            "--tune-steps", "8", "--tune-rate", "0.01", "--tune-projections", "--out", output]);
        Assert.That(code, Is.Zero, error);
        var before = Number(text, @"at positions 16-31: ([0-9.]+) nats before tuning");
        var after = Number(text, @"KL at positions 16-31: [0-9.]+ -> ([0-9.]+) nats");
        Assert.That(after, Is.LessThan(before), text);
        var contract = ModelContract.Read(ModelFile.Load(output));
        Assert.That(contract.State.Count(s => s.ElementType == TensorProto.Types.DataType.Int8), Is.EqualTo(4), "layers 0 and 4 keep int8 key and value caches");

        (code, _, error) = CommandLineRun.Invoke(EvalCommand.Create(), ["--model", Stories, "--input-ids", ids, "--swapped", output, "--bucket", "16", "--out", Dir]);
        Assert.That(code, Is.Zero, error);
        var row = File.ReadAllLines(Path.Combine(Dir, "eval.csv")).Skip(1).Select(l => l.Split(',')).Last();
        Assert.That(double.Parse(row[^5], CultureInfo.InvariantCulture), Is.EqualTo(after).Within(1e-4), "eval of the written model, positions 16-31");
    }

    [Test]
    public void Int8OnARuleWithoutACacheIsRefusedBeforeFitting()
    {
        var ids = Ids();
        var (code, _, error) = CommandLineRun.Invoke(CalibrateCommand.Create(), ["--model", Stories, "--calibration", ids, "--state-budget", "20000",
            "--plan", "linear-hedgehog:2,state=int8@*", "--out", Path.Combine(Dir, "x.onnx")]);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("keeps no cache of keys and values"));
        Assert.That(error.Trim().Split('\n'), Has.Length.EqualTo(1), "one line");
    }
}
