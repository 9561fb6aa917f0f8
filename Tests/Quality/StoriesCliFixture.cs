using System.Globalization;
using System.Text.RegularExpressions;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Quality;

/// <summary>
/// What the CLI quality tests on stories260K share: a fresh folder per test, a small set of ids the model sampled
/// itself, and reading a printed figure back.
/// </summary>
public abstract class StoriesCliFixture
{
    protected static string Stories => Llama2c.LlamaGraphTests.CheckpointPath;

    protected string Dir { get; private set; } = "";

    [SetUp]
    public void MakeDir()
    {
        Dir = Path.Combine(Path.GetTempPath(), "onnx-attention-cli", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Dir);
    }

    [TearDown]
    public void CleanDir() => Directory.Delete(Dir, recursive: true);

    /// <summary>2 x 32 ids sampled from stories260K (seed 5).</summary>
    protected string Ids()
    {
        var path = Path.Combine(Dir, "ids.pb");
        var (code, _, error) = CommandLineRun.Invoke(GenerateCommand.Create(), ["--model", Stories, "--attention", "softmax", "--prompt", "1", "--batch", "2",
            "--max-tokens", "31", "--temperature", "1", "--seed", "5", "--save-ids", path]);
        Assert.That(code, Is.Zero, error);
        return path;
    }

    /// <summary>The number captured by the first group of <paramref name="pattern"/> in <paramref name="text"/>.</summary>
    protected static double Number(string text, string pattern)
    {
        var m = Regex.Match(text, pattern);
        Assert.That(m.Success, Is.True, $"'{pattern}' in:\n{text}");
        return double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }
}
