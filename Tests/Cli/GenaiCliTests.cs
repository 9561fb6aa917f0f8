using System.Text.Json.Nodes;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Host.Genai;
using OnnxAttention.Tests.Native;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cli;

/// <summary>
/// The README's onnxruntime-genai commands as a user runs them: genai-llama writes a genai-form folder, convert --genai
/// swaps it into a folder that genai-generate (onnxruntime-genai itself) runs, bench-generate --quick writes its table,
/// CSV and plots; rules genai cannot carry are refused in one line.
/// </summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class GenaiCliTests
{
    private NativeBuild _native = null!;
    private string _dir = "";

    [OneTimeSetUp]
    public void BuildLibrary() => _native = NativeBuild.Create();

    [OneTimeTearDown]
    public void DisposeLibrary() => _native?.Dispose();

    [SetUp]
    public void Folder() => _dir = Directory.CreateTempSubdirectory("onnx-attention-genai-cli-").FullName;

    [TearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    private string Original()
    {
        var folder = Path.Combine(_dir, "llama");
        var (code, output, error) = CommandLineRun.Invoke(GenaiLlamaCommand.Create(), "--size", "tiny", "--out", folder);
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.Contain("2 layers, hidden 64, 4 query / 2 KV heads"));
        return folder;
    }

    [Test]
    public void GenaiGeneratesFromTheFolderConvertWrites()
    {
        var original = Original();
        File.WriteAllText(Path.Combine(original, "tokenizer.json"), "{}");
        var (code, _, error) = CommandLineRun.Invoke(GenaiGenerateCommand.Create(), original, "--prompt", "1 17 42 99 3 7", "--max-tokens", "6");
        Assert.That(code, Is.Zero, "genai runs the original: " + error);

        var swapped = Path.Combine(_dir, "linear");
        (code, var output, error) = CommandLineRun.Invoke(ConvertCommand.Create(), Path.Combine(original, "model.onnx"), "--attention", "linear-elu",
            "--genai", swapped, "--native-library", _native.Library);
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.Contain("recurrent state (genai's recurrent_state / conv_state pair)"));
        foreach (var file in new[] { GenaiFolder.ModelFile, GenaiFolder.ConfigFile, GenaiFolder.NativeLibraryFile, "tokenizer.json" })
        {
            Assert.That(File.Exists(Path.Combine(swapped, file)), $"{file} is in the genai folder");
        }
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(swapped, GenaiFolder.ConfigFile)))!;
        Assert.That(config["model"]!["decoder"]!["session_options"]!["custom_ops_library"]!.GetValue<string>(), Is.EqualTo(GenaiFolder.NativeLibraryFile));

        (code, output, error) = CommandLineRun.Invoke(GenaiGenerateCommand.Create(), swapped, "--prompt", "1 17 42 99 3 7", "--prompt", "5 6 7 8 9 10", "--max-tokens", "6");
        Assert.That(code, Is.Zero, "genai runs the swap: " + error);
        Assert.That(output, Does.Contain("[0] ").And.Contain("[1] ").And.Contain("onnxruntime-genai: prefill"));
    }

    [Test]
    public void ARuleGenaiCannotCarryIsRefusedInOneLine()
    {
        var original = Original();
        var (code, _, error) = CommandLineRun.Invoke(ConvertCommand.Create(), Path.Combine(original, "model.onnx"), "--attention", "segment:8",
            "--genai", Path.Combine(_dir, "segment"), "--native-library", _native.Library);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error.Trim(), Does.StartWith("error: ").And.Contain("cannot run this rule").And.Not.Contain("\n"));
    }

    [Test]
    public void GenaiGenerateNamesAFolderWithoutConfig()
    {
        var (code, _, error) = CommandLineRun.Invoke(GenaiGenerateCommand.Create(), _dir);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("has no genai_config.json"));
    }

    [Test]
    public void BenchGenerateQuickWritesItsTableCsvAndPlots()
    {
        var (code, _, error) = CommandLineRun.Invoke(BenchGenerateCommand.Create(), "--quick", "--native-library", _native.Library, "--out", _dir);
        Assert.That(code, Is.Zero, error);
        var csv = File.ReadAllLines(Path.Combine(_dir, "bench-generate.csv"));
        Assert.That(csv[0], Is.EqualTo("contender,context,batch,prefill_tokens_per_second,decode_tokens_per_second,peak_mb,status"));
        // 5 contenders x 2 contexts x 2 batches.
        Assert.That(csv, Has.Length.EqualTo(1 + 20));
        foreach (var name in new[] { "genai original (GQA + KV cache),", "host softmax,", "\"host window:1024,sinks=4\",", "host linear-elu,", "genai swapped linear-elu," })
        {
            Assert.That(csv.Count(l => l.StartsWith(name, StringComparison.Ordinal) && l.EndsWith(",measured", StringComparison.Ordinal)), Is.EqualTo(4), name);
        }
        foreach (var png in new[] { "bench-generate-decode.png", "bench-generate-prefill.png", "bench-generate-memory.png" })
        {
            Assert.That(new FileInfo(Path.Combine(_dir, png)).Length, Is.GreaterThan(1000), png);
        }
    }

    /// <summary>--contenders gives the order of a round; --round-seconds stops the rounds after one that took longer.</summary>
    [Test]
    public void BenchGenerateRunsTheContendersInTheOrderNamedAndStopsRoundsPastRoundSeconds()
    {
        var (code, _, error) = CommandLineRun.Invoke(BenchGenerateCommand.Create(), "--quick", "--contenders", "genai-swapped,host-linear", "--repeats", "3", "--round-seconds", "0.001",
            "--native-library", _native.Library, "--out", _dir);
        Assert.That(code, Is.Zero, error);
        var runs = File.ReadAllLines(Path.Combine(_dir, "bench-generate-runs.csv")).Skip(1).Select(l => l.Split(',')).ToList();
        // 2 contexts x 2 batches, one round each, genai first.
        Assert.That(runs, Has.Count.EqualTo(8));
        Assert.That(runs.Select(r => r[1]).Distinct(), Is.EqualTo(new[] { "1" }));
        Assert.That(runs.Where((_, i) => i % 2 == 0).Select(r => r[2]).Distinct(), Is.EqualTo(new[] { "genai swapped linear-elu" }));
    }

    [Test]
    public void BenchGenerateStopsARunPastTheCellTimeoutAndSaysSo()
    {
        var (code, _, error) = CommandLineRun.Invoke(BenchGenerateCommand.Create(), "--quick", "--contenders", "host-linear", "--cell-timeout", "0.05",
            "--native-library", _native.Library, "--out", _dir);
        Assert.That(code, Is.Zero, error);
        var csv = File.ReadAllLines(Path.Combine(_dir, "bench-generate.csv")).Skip(1).ToList();
        Assert.That(csv, Has.Count.EqualTo(4));
        Assert.That(csv, Has.All.Contain("failed: not finished within 0.05 s (stopped)"));
        Assert.That(File.ReadAllLines(Path.Combine(_dir, "bench-generate-runs.csv")), Has.Length.EqualTo(1), "no run finished");
    }
}
