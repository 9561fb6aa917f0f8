using System.CommandLine;
using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Quality;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>eval, generate --save-ids, and the commands that take .bin checkpoints and already swapped models.</summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class QualityCliTests
{
    private string _dir = "";

    private static string Stories => Llama2c.LlamaGraphTests.CheckpointPath;

    [SetUp]
    public void Folder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "onnx-attention-quality", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Invoke(Command command, params string[] args) => CommandLineRun.Invoke(command, args);

    private string SampleIds(int seed, int tokens)
    {
        var path = Path.Combine(_dir, $"ids{seed}.pb");
        var (code, text, error) = Invoke(GenerateCommand.Create(), "--model", Stories, "--attention", "softmax", "--prompt", "1", "--batch", "2",
            "--max-tokens", (tokens - 1).ToString(), "--temperature", "1", "--seed", seed.ToString(), "--save-ids", path);
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain($"wrote ids [2, {tokens}]"));
        return path;
    }

    [Test]
    public void SavedSamplesAreReproducible()
    {
        var a = Tensors.ToInt64Array(TensorProto.Parser.ParseFrom(File.ReadAllBytes(SampleIds(3, 40))));
        var again = Tensors.ToInt64Array(TensorProto.Parser.ParseFrom(File.ReadAllBytes(SampleIds(3, 40))));
        var other = Tensors.ToInt64Array(TensorProto.Parser.ParseFrom(File.ReadAllBytes(SampleIds(4, 40))));
        Assert.That(a, Has.Length.EqualTo(80));
        Assert.That(a[0], Is.EqualTo(1L));
        Assert.That(again, Is.EqualTo(a));
        Assert.That(other, Is.Not.EqualTo(a));
    }

    [Test]
    public void EvalWritesTableCsvAndPlotWithZeroKlForSoftmax()
    {
        var ids = SampleIds(1, 48);
        var (code, text, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--input-ids", ids, "--attention", "softmax", "--attention", "window:4",
            "--per-layer", "--bucket", "16", "--out", _dir);
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("0-15").And.Contain("32-47").And.Contain("cross-entropy"));
        var csv = File.ReadAllLines(Path.Combine(_dir, "eval.csv"));
        // softmax, window:4 and window:4 in each of 5 layers, 3 buckets each.
        Assert.That(csv, Has.Length.EqualTo(1 + 7 * 3));
        var softmax = csv.Where(l => l.StartsWith("softmax,", StringComparison.Ordinal)).Select(l => l.Split(',')).ToList();
        Assert.That(softmax.Select(f => double.Parse(f[5], System.Globalization.CultureInfo.InvariantCulture)), Is.All.EqualTo(0.0));
        var window = csv.Where(l => l.StartsWith("window:4,,", StringComparison.Ordinal)).Select(l => l.Split(',')).ToList();
        Assert.That(window[0][2], Is.EqualTo("5120"), "(keys + values) x 4 KV heads x 4 positions x dim 8 x 4 bytes, x 5 layers");
        Assert.That(double.Parse(window[2][5], System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0.1));
        Assert.That(File.Exists(Path.Combine(_dir, "eval-kl.png")));
    }

    [Test]
    public void EvalOfAConvertedModelEqualsEvalOfItsRule()
    {
        var ids = SampleIds(2, 24);
        var swapped = Path.Combine(_dir, "w.onnx");
        var (code, text, error) = Invoke(ConvertCommand.Create(), Stories, "--attention", "window:4@0;linear-elu@*", "--out", swapped);
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("-> window:4; state 1,024 bytes per sequence").And.Contain("-> linear-elu; state 1,152 bytes per sequence")
            .And.Contain("all layers: 5,632 bytes"));
        (code, _, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--input-ids", ids, "--attention", "window:4@0;linear-elu@*", "--swapped", swapped, "--out", _dir);
        Assert.That(code, Is.Zero, error);
        var rows = File.ReadAllLines(Path.Combine(_dir, "eval.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        Assert.That(rows, Has.Count.EqualTo(2));
        Assert.That(rows[1][^5], Is.EqualTo(rows[0][^5]), "the same KL (fields counted from the end: the name may be quoted with commas)");
    }

    [Test]
    public void LogitsRunsAnAlreadySwappedModelAsItIsAndRefusesASecondRule()
    {
        var ids = SampleIds(5, 12);
        var swapped = Path.Combine(_dir, "w.onnx");
        Assert.That(Invoke(ConvertCommand.Create(), Stories, "--attention", "window:3", "--out", swapped).Code, Is.Zero);
        var a = Path.Combine(_dir, "a.pb");
        var b = Path.Combine(_dir, "b.pb");
        var (code, text, error) = Invoke(LogitsCommand.Create(), "--model", swapped, "--input-ids", ids, "--out", a);
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("already swapped: window:3"));
        (code, _, error) = Invoke(LogitsCommand.Create(), "--model", Stories, "--attention", "window:3", "--input-ids", ids, "--out", b);
        Assert.That(code, Is.Zero, error);
        Assert.That(File.ReadAllBytes(a), Is.EqualTo(File.ReadAllBytes(b)));
        (code, _, error) = Invoke(LogitsCommand.Create(), "--model", swapped, "--attention", "softmax", "--input-ids", ids, "--out", b);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("already swapped (window:3); leave out --attention"));
        (code, _, error) = Invoke(LogitsCommand.Create(), "--model", Stories, "--input-ids", ids, "--out", b);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("is not swapped; choose a rule with --attention"));
    }

    [Test]
    public void GenerateRunsASwappedModelAndReportsItsState()
    {
        var swapped = Path.Combine(_dir, "w.onnx");
        Assert.That(Invoke(ConvertCommand.Create(), Stories, "--attention", "window:4@0;linear-elu@*", "--out", swapped).Code, Is.Zero);
        var (code, text, error) = Invoke(GenerateCommand.Create(), "--model", swapped, "--max-tokens", "4", "--prompt", "1 2");
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("already swapped: window:4@0;linear-elu@*").And.Contain("state 5,632 bytes per sequence"));
    }

    [Test]
    public void ConvertWithoutASwapWritesTheCheckpointAsOnnxThatInspectReads()
    {
        var onnx = Path.Combine(_dir, "stories.onnx");
        var (code, _, error) = Invoke(ConvertCommand.Create(), Stories, "--attention", "none", "--out", onnx);
        Assert.That(code, Is.Zero, error);
        (code, var text, error) = Invoke(InspectCommand.Create(), onnx);
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("layer 4: MatMul/Softmax attention"));
        (code, text, _) = Invoke(InspectCommand.Create(), Stories);
        Assert.That(code, Is.Zero);
        Assert.That(text, Does.Contain("layer 4: MatMul/Softmax attention"));
    }

    [Test]
    public void EvalTokenByTokenCarriesTheStateAndSaysSo()
    {
        var ids = SampleIds(5, 32);
        var (code, text, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--input-ids", ids, "--attention", "window:4", "--bucket", "32", "--out", _dir);
        Assert.That(code, Is.Zero, error);
        var whole = File.ReadAllLines(Path.Combine(_dir, "eval.csv"))[1].Split(',');
        Assert.That(text, Does.Not.Contain("a call"));
        (code, text, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--input-ids", ids, "--attention", "window:4", "--bucket", "32", "--chunk", "1", "--out", _dir);
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("fed 1 token(s) a call"));
        var steps = File.ReadAllLines(Path.Combine(_dir, "eval.csv"))[1].Split(',');
        Assert.That(double.Parse(whole[5], System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0.1));
        Assert.That(double.Parse(steps[5], System.Globalization.CultureInfo.InvariantCulture),
            Is.EqualTo(double.Parse(whole[5], System.Globalization.CultureInfo.InvariantCulture)).Within(1e-4), "a float32 window holds what one call saw");
        (code, _, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--input-ids", ids, "--attention", "window:4", "--chunk", "-1", "--out", _dir);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--chunk must be >= 0"));
    }

    [Test]
    public void EvalRefusesMissingOrDoubleIdsAndNothingToMeasure()
    {
        var (code, _, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--attention", "window:4", "--out", _dir);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("exactly one of --input-ids"));
        var text = Path.Combine(_dir, "t.txt");
        File.WriteAllText(text, "abc");
        (code, _, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--text", text, "--seq", "8", "--out", _dir, "--attention", "window:2");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("fewer than one row of --seq 8"));
        File.WriteAllText(text, new string('a', 40));
        (code, _, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--text", text, "--seq", "8", "--out", _dir);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("nothing to measure"));
    }

    [Test]
    public void TextRowsAreSpreadEvenlyOverTheText()
    {
        var text = Path.Combine(_dir, "t.txt");
        File.WriteAllText(text, "aabbccddee!");
        var (ids, rows, seq) = IdsFile.FromText(text, IdsFile.Bytes, 2, 2, 256);
        Assert.That((rows, seq), Is.EqualTo((2, 2)));
        Assert.That(ids, Is.EqualTo(new long[] { 'a', 'a', 'c', 'c' }));
    }

    [Test]
    public void CalibrateWritesAConstantMemoryPlanWithinTheBudgetWhoseKlEvalReproduces()
    {
        var ids = SampleIds(6, 24);
        var calibrated = Path.Combine(_dir, "cal.onnx");
        var (code, text, error) = Invoke(CalibrateCommand.Create(), "--model", Stories, "--calibration", ids, "--state-budget", "2048", "--from", "0",
            "--moves", "4", "--out", calibrated);
        Assert.That(code, Is.Zero, error);
        var contract = OnnxAttention.Graphs.Swapping.ModelContract.Read(OnnxAttention.Graphs.Io.ModelFile.Load(calibrated));
        Assert.That(contract.State.Any(s => s.Grows), Is.False, "every layer keeps a fixed-size state");
        var bytes = contract.State.Sum(s => s.BytesPerRow);
        // A window that keeps token ids (offered by default in layer 0) keeps them as float32 numbers, its only state.
        var keptIds = text.Contains("keys=ids", StringComparison.Ordinal) ? 1 : 0;
        Assert.That(contract.State.Count(s => s.ElementType == OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Float), Is.EqualTo(keptIds));
        Assert.That(contract.State.Select(s => s.ElementType).Where(t => t != OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Float),
            Is.All.EqualTo(OnnxAttention.Graphs.Onnx.TensorProto.Types.DataType.Float16), "calibrate keeps state in float16 by default");
        Assert.That(bytes, Is.LessThanOrEqualTo(2048));
        Assert.That(text, Does.Contain($"state per sequence: {bytes:N0} bytes (budget 2,048)"));
        var kl = System.Text.RegularExpressions.Regex.Match(text, @"at positions 0-23: ([0-9.]+) nats").Groups[1].Value;
        Assert.That(kl, Is.Not.Empty, text);

        (code, _, error) = Invoke(EvalCommand.Create(), "--model", Stories, "--input-ids", ids, "--swapped", calibrated, "--bucket", "24", "--out", _dir);
        Assert.That(code, Is.Zero, error);
        var row = File.ReadAllLines(Path.Combine(_dir, "eval.csv"))[1].Split(',');
        Assert.That(double.Parse(row[^5], System.Globalization.CultureInfo.InvariantCulture),
            Is.EqualTo(double.Parse(kl, System.Globalization.CultureInfo.InvariantCulture)).Within(1e-4));
    }

    [Test]
    public void CalibrateGivesTheBytesTheSearchLeavesToItsWindowsUnlessToldNot()
    {
        var ids = SampleIds(8, 24);
        string[] Args(string output, params string[] more) => ["--model", Stories, "--calibration", ids, "--state-budget", "3000", "--from", "0", "--moves", "2",
            "--fit", "none", "--state-types", "float32", "--id-windows", "none", "--out", Path.Combine(_dir, output), .. more];
        var (code, kept, error) = Invoke(CalibrateCommand.Create(), Args("kept.onnx", "--grow", "false"));
        Assert.That(code, Is.Zero, error);
        (code, var grown, error) = Invoke(CalibrateCommand.Create(), Args("grown.onnx"));
        Assert.That(code, Is.Zero, error);
        long Bytes(string text) => long.Parse(System.Text.RegularExpressions.Regex.Match(text, @"state per sequence: ([0-9,]+) bytes").Groups[1].Value.Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture);
        double Kl(string text) => double.Parse(System.Text.RegularExpressions.Regex.Match(text, @"at positions 0-23: ([0-9.]+) nats").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        // float32 windows cost 256 bytes a token a layer: whatever the search left, at least 256 of the 3,000 bytes were spent after it.
        Assert.That(3000 - Bytes(kept), Is.GreaterThanOrEqualTo(256), kept);
        Assert.That(Bytes(grown), Is.GreaterThan(Bytes(kept)).And.LessThanOrEqualTo(3000), grown);
        Assert.That(3000 - Bytes(grown), Is.LessThan(256), "no whole token's bytes left over");
        Assert.That(Kl(grown), Is.LessThan(Kl(kept)));
        Assert.That(grown, Does.Contain("grown after the search into the unspent bytes: layer "));
        Assert.That(kept, Does.Not.Contain("grown after the search"));
    }

    [Test]
    public void CalibrateRefusesABudgetNoPlanFits()
    {
        var ids = SampleIds(7, 8);
        var (code, _, error) = Invoke(CalibrateCommand.Create(), "--model", Stories, "--calibration", ids, "--state-budget", "1000", "--state-types", "float32",
            "--out", Path.Combine(_dir, "x.onnx"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("no plan fits --state-budget 1000: the cheapest candidate in every layer already takes 1280 bytes"));
        Assert.That(File.Exists(Path.Combine(_dir, "x.onnx")), Is.False);
        (code, _, error) = Invoke(CalibrateCommand.Create(), "--model", Stories, "--calibration", ids, "--state-budget", "500", "--out", Path.Combine(_dir, "x.onnx"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("no plan fits --state-budget 500: the cheapest candidate in every layer already takes 640 bytes"), "float16 state by default");
        (code, _, error) = Invoke(CalibrateCommand.Create(), "--model", Stories, "--calibration", ids, "--state-budget", "500", "--state-types", "float8",
            "--out", Path.Combine(_dir, "x.onnx"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--state-types takes float32, float16, bfloat16 or int8"));
        Assert.That(File.Exists(Path.Combine(_dir, "x.onnx")), Is.False);
    }
}
