using System.CommandLine;
using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cli;

/// <summary>
/// Mistakes a user plausibly makes on the command line: each gives exit code 1 and one line <c>error: ...</c> naming
/// the problem (no stack trace), and never destroys an input file.
/// </summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class CliBadInputTests
{
    private string _dir = "";

    [SetUp]
    public void Folder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "onnx-attention-cli-bad", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Invoke(Command command, params string[] args) => CommandLineRun.Invoke(command, args);

    private static void AssertOneLineError(int code, string error, string expected)
    {
        Assert.That(code, Is.EqualTo(1), error);
        Assert.That(error.TrimEnd().Split('\n'), Has.Length.EqualTo(1), error);
        Assert.That(error, Does.StartWith("error: ").And.Contain(expected));
    }

    private string ReluModel()
    {
        var path = Path.Combine(_dir, "relu.onnx");
        File.WriteAllBytes(path, new ModelBuilder().Input("x", TensorProto.Types.DataType.Float, 2).Node("Relu", ["x"], ["y"])
            .Output("y", TensorProto.Types.DataType.Float, 2).Build().ToByteArray());
        return path;
    }

    [Test]
    public void ConvertRefusesAnOutputThatIsItsInputAndLeavesTheInputAlone()
    {
        var model = ReluModel();
        var before = File.ReadAllBytes(model);
        var (code, _, error) = Invoke(ConvertCommand.Create(), model, "--attention", "linear-elu", "--out", model);
        AssertOneLineError(code, error, "would overwrite that input");
        Assert.That(File.ReadAllBytes(model), Is.EqualTo(before));

        var link = Path.Combine(_dir, "link.onnx");
        File.CreateSymbolicLink(link, model);
        (code, _, error) = Invoke(ConvertCommand.Create(), model, "--attention", "linear-elu", "--out", link);
        AssertOneLineError(code, error, "would overwrite that input");
        Assert.That(File.ReadAllBytes(model), Is.EqualTo(before));
    }

    [Test]
    public void LogitsRefusesAnOutputThatIsTheIdsFile()
    {
        var ids = Path.Combine(_dir, "ids.pb");
        File.WriteAllBytes(ids, Tensors.Int64("input_ids", [1, 2, 3], 1, 3).ToByteArray());
        var before = File.ReadAllBytes(ids);
        var (code, _, error) = Invoke(LogitsCommand.Create(), "--model", ReluModel(), "--attention", "linear-elu", "--input-ids", ids, "--out", ids);
        AssertOneLineError(code, error, "would overwrite that input");
        Assert.That(File.ReadAllBytes(ids), Is.EqualTo(before));
    }

    [Test]
    public void LogitsNamesAMissingOrUnreadableIdsFile()
    {
        var model = Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", "gpt2-eager-dynamo", "model.onnx");
        var missing = Path.Combine(_dir, "missing.pb");
        var (code, _, error) = Invoke(LogitsCommand.Create(), "--model", model, "--attention", "linear-elu", "--input-ids", missing, "--out", Path.Combine(_dir, "l.pb"));
        AssertOneLineError(code, error, $"--input-ids '{missing}' does not exist");

        var garbage = Path.Combine(_dir, "garbage.pb");
        File.WriteAllBytes(garbage, [0xff, 0xff, 0xff]);
        (code, _, error) = Invoke(LogitsCommand.Create(), "--model", model, "--attention", "linear-elu", "--input-ids", garbage, "--out", Path.Combine(_dir, "l.pb"));
        AssertOneLineError(code, error, "is not an ONNX TensorProto");
    }

    [TestCase(new long[] { 1, -1, 3 }, new long[] { 1, 3 }, "--input-ids holds token -1 at row 0, position 1; token ids must be in [0, 512)")]
    [TestCase(new long[] { 1, 2, 512 }, new long[] { 1, 3 }, "--input-ids holds token 512 at row 0, position 2; token ids must be in [0, 512)")]
    [TestCase(new long[] { 1, 2 }, new long[] { 1, 3 }, "--input-ids declares shape [1, 3] (3 ids) but holds 2")]
    [TestCase(new long[0], new long[] { 1, 0 }, "--input-ids has shape [1, 0]; it needs at least one row and one token per row")]
    [TestCase(new long[0], new long[] { 0, 3 }, "--input-ids has shape [0, 3]; it needs at least one row and one token per row")]
    public void LogitsRefusesIdsThatAreNotTokensOfTheModel(long[] ids, long[] dims, string expected)
    {
        // Tensors.Int64 checks the element count, so a short tensor is written field by field.
        var tensor = new TensorProto { Name = "input_ids", DataType = (int)TensorProto.Types.DataType.Int64 };
        tensor.Dims.AddRange(dims);
        tensor.Int64Data.AddRange(ids);
        var path = Path.Combine(_dir, "ids.pb");
        File.WriteAllBytes(path, tensor.ToByteArray());
        var output = Path.Combine(_dir, "logits.pb");
        var model = Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", "gpt2-eager-dynamo", "model.onnx");
        var (code, _, error) = Invoke(LogitsCommand.Create(), "--model", model, "--attention", "linear-elu", "--input-ids", path, "--out", output);
        AssertOneLineError(code, error, expected);
        Assert.That(File.Exists(output), Is.False);
    }

    [Test]
    public void GraphNamesAMissingFileAndAFileThatIsNotOnnx()
    {
        var missing = Path.Combine(_dir, "missing.onnx");
        var (code, _, error) = Invoke(GraphCommand.Create(), missing);
        AssertOneLineError(code, error, $"model file '{missing}' does not exist");

        var garbage = Path.Combine(_dir, "garbage.onnx");
        File.WriteAllBytes(garbage, [1, 2, 3, 0xff, 0xff]);
        (code, _, error) = Invoke(GraphCommand.Create(), garbage);
        AssertOneLineError(code, error, "is not a valid ONNX model");
    }

    [TestCase("--batch", "0", "--batch must be >= 1, got 0")]
    [TestCase("--batch", "-2", "--batch must be >= 1, got -2")]
    [TestCase("--threads", "-1", "--threads must be >= 0")]
    public void GenerateRefusesCountsBelowTheirMinimum(string option, string value, string expected)
    {
        var (code, output, error) = Invoke(GenerateCommand.Create(), "--max-tokens", "2", option, value);
        AssertOneLineError(code, error, expected);
        Assert.That(output, Is.Empty, "refused before loading anything");
    }

    [Test]
    public void GenerateSaysAModelFolderIsAFolderAndNamesTheExtensionsItReads()
    {
        var (code, _, error) = Invoke(GenerateCommand.Create(), "--max-tokens", "2", "--model", _dir);
        AssertOneLineError(code, error, $"model '{_dir}' is a folder");

        var ids = Path.Combine(_dir, "ids.pb");
        File.WriteAllBytes(ids, Tensors.Int64("input_ids", [1, 2, 3], 1, 3).ToByteArray());
        (code, _, error) = Invoke(GenerateCommand.Create(), "--max-tokens", "2", "--model", ids);
        AssertOneLineError(code, error, "expected a llama2.c checkpoint (.bin) or an exported decoder (.onnx), got a '.pb' file");

        (code, _, error) = Invoke(TritonCommand.Create(), "--model", ids, "--out", Path.Combine(_dir, "repo"));
        AssertOneLineError(code, error, "got a '.pb' file");
    }

    [Test]
    public void InspectSaysAFolderIsAFolder()
    {
        var (code, _, error) = Invoke(InspectCommand.Create(), _dir);
        AssertOneLineError(code, error, $"model file '{_dir}' is a folder");
    }

    [TestCase("")]
    [TestCase(" ")]
    public void TritonNamesAnEmptyModelName(string name)
    {
        var (code, _, error) = Invoke(TritonCommand.Create(), "--out", Path.Combine(_dir, "repo"), "--name", name);
        AssertOneLineError(code, error, $"model name '{name}' must be a single folder name");
    }

    [Test]
    public void TritonSaysAnOutputFileIsNotARepositoryFolder()
    {
        var file = Path.Combine(_dir, "repo.txt");
        File.WriteAllText(file, "mine");
        var (code, _, error) = Invoke(TritonCommand.Create(), "--out", file);
        AssertOneLineError(code, error, $"--out '{file}' is a file; give the model repository folder");
        Assert.That(File.ReadAllText(file), Is.EqualTo("mine"));
    }

    [Test]
    public void BenchOpsNamesAnUnknownGroup()
    {
        var (code, _, error) = Invoke(BenchOpsCommand.Create(), "--quick", "--ops", "linear,foo", "--out", _dir);
        AssertOneLineError(code, error, "unknown --ops group(s) foo");
    }

    [TestCase("--type", "float16", "--targets sets each case's type itself; it takes no --type")]
    [TestCase("--forms", null, "--targets runs its own four cases; it takes no --forms")]
    public void BenchOpsTargetsRefusesOptionsItSetsItself(string option, string? value, string message)
    {
        string[] args = value is null ? ["--targets", option, "--out", _dir] : ["--targets", option, value, "--out", _dir];
        var (code, _, error) = Invoke(BenchOpsCommand.Create(), args);
        AssertOneLineError(code, error, message);
    }

    [Test]
    public void GenerateSaysWhereAModelWithAPositionTableFailed()
    {
        // GPT-2's learned positions end at 4096: feeding back the 4094th new token after a 3-token prompt needs position 4096.
        var model = Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", "gpt2-eager-dynamo", "model.onnx");
        var (code, output, error) = Invoke(GenerateCommand.Create(), "--model", model, "--attention", "linear-elu", "--prompt", "1 2 3", "--max-tokens", "4100");
        AssertOneLineError(code, error, "the model failed after 4094 generated tokens (prompt of 3 tokens): ");
        Assert.That(error, Does.Contain("idx=4096"));
        Assert.That(output, Does.EndWith(Environment.NewLine), "the error starts on its own line after the streamed tokens");
    }

    [Test]
    public void BenchMemoryTableShowsWhereEachRunEnded()
    {
        Assert.That(BenchMemoryCommand.TableRows([2_000, 1_000]), Is.EqualTo(new[] { 1_000, 2_000, 10_000, 100_000 }));
        Assert.That(BenchMemoryCommand.TableRows([100_000, 10_000]), Is.EqualTo(new[] { 1_000, 10_000, 100_000 }));
        Assert.That(BenchMemoryCommand.TableRows([0, 150]), Is.EqualTo(new[] { 150, 1_000, 10_000, 100_000 }));
    }
}
