using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Serving;

/// <summary>
/// The Triton model repository that <c>onnx-attention triton</c> writes. No Triton server runs here, so these tests
/// check what the server would rely on: the config declares exactly the model's inputs and outputs with their types
/// and ranks, names our library, and tensors shaped as the config says run through the model.
/// </summary>
[TestFixture]
[NonParallelizable] // the command prints to Console
public partial class TritonRepositoryTests
{
    private string _dir = "";

    [SetUp]
    public void Folder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "onnx-attention-triton", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    private sealed record Entry(string Name, string DataType, long[] Dims, bool ReshapedToScalar);

    [GeneratedRegex(@"\{ name: ""(?<name>[^""]+)"" data_type: (?<type>TYPE_\w+) dims: \[ (?<dims>[-\d, ]*) \](?<scalar> reshape: \{ shape: \[ \] \})? \}")]
    private static partial Regex EntryPattern();

    private static List<Entry> Section(string config, string section)
    {
        var start = config.IndexOf(section + " [", StringComparison.Ordinal);
        Assert.That(start, Is.GreaterThanOrEqualTo(0), $"config has no {section} section");
        var body = config[start..config.IndexOf("\n]", start, StringComparison.Ordinal)];
        return EntryPattern().Matches(body).Select(m => new Entry(m.Groups["name"].Value, m.Groups["type"].Value,
            m.Groups["dims"].Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(long.Parse).ToArray(),
            m.Groups["scalar"].Success)).ToList();
    }

    private static string TritonType(TensorElementType type) => type switch
    {
        TensorElementType.Float => "TYPE_FP32",
        TensorElementType.Int64 => "TYPE_INT64",
        TensorElementType.Float16 => "TYPE_FP16",
        _ => "unexpected " + type,
    };

    private static int Invoke(params string[] args) => CommandLineRun.Invoke(TritonCommand.Create(), args).Code;

    [TestCase("linear-elu")]
    [TestCase("window:8")]
    [TestCase("softmax")]
    public void ConfigDeclaresExactlyTheModelsInputsAndOutputs(string rule)
    {
        Assert.That(Invoke("--attention", rule, "--out", _dir, "--name", "tiny", "--library", "/srv/lib/libonnxattention.so"), Is.Zero);
        var config = File.ReadAllText(Path.Combine(_dir, "tiny", "config.pbtxt"));
        Assert.That(config, Does.Contain("name: \"tiny\""));
        Assert.That(config, Does.Contain("backend: \"onnxruntime\""));
        Assert.That(config, Does.Contain("model_operations { op_library_filename: \"/srv/lib/libonnxattention.so\" }"));

        using var session = SessionFactory.Create(ModelFile.Load(Path.Combine(_dir, "tiny", "1", "model.onnx")), 1);
        foreach (var (section, metadata) in new[] { ("input", session.Session.InputMetadata), ("output", session.Session.OutputMetadata) })
        {
            var entries = Section(config, section);
            Assert.That(entries.Select(e => e.Name), Is.EquivalentTo(metadata.Keys), section);
            foreach (var entry in entries)
            {
                var meta = metadata[entry.Name];
                Assert.That(entry.DataType, Is.EqualTo(TritonType(meta.ElementDataType)), entry.Name);
                if (meta.Dimensions.Length == 0)
                {
                    Assert.That(entry.ReshapedToScalar && entry.Dims.SequenceEqual([1L]), Is.True, $"{entry.Name} is a scalar: dims [1] reshaped to []");
                }
                else
                {
                    Assert.That(entry.Dims, Is.EqualTo(meta.Dimensions.Select(d => (long)d).ToArray()), entry.Name);
                }
            }
        }
    }

    [Test]
    public void TensorsShapedAsTheConfigSaysRunThroughTheModel()
    {
        Assert.That(Invoke("--attention", "linear-elu", "--out", _dir), Is.Zero);
        var config = File.ReadAllText(Path.Combine(_dir, "decoder", "config.pbtxt"));
        using var session = SessionFactory.Create(ModelFile.Load(Path.Combine(_dir, "decoder", "1", "model.onnx")), 1);
        using var values = new Support.DisposableList<OrtValue>();
        var names = new List<string>();
        foreach (var entry in Section(config, "input"))
        {
            // What a client would send for one token of one sequence at its start: batch 1, one token, zero state.
            long[] shape = entry.ReshapedToScalar ? [] : entry.Dims.Select(d => d < 0 ? 1L : d).ToArray();
            var count = (int)shape.Aggregate(1L, (a, d) => a * d);
            values.Add(entry.DataType switch
            {
                "TYPE_INT64" => OrtValue.CreateTensorValueFromMemory(new long[count], shape),
                "TYPE_FP32" => OrtValue.CreateTensorValueFromMemory(new float[count], shape),
                _ => throw new AssertionException($"unexpected input type {entry.DataType}"),
            });
            names.Add(entry.Name);
        }
        var outputs = Section(config, "output");
        using var runOptions = new RunOptions();
        using var results = session.Session.Run(runOptions, names, values, outputs.Select(o => o.Name).ToList());
        for (var i = 0; i < outputs.Count; i++)
        {
            var shape = results[i].GetTensorTypeAndShape().Shape;
            Assert.That(shape, Has.Length.EqualTo(outputs[i].Dims.Length), outputs[i].Name);
            Assert.That(shape.Zip(outputs[i].Dims).All(p => p.Second < 0 || p.First == p.Second), Is.True, $"{outputs[i].Name}: {string.Join(',', shape)}");
        }
        var logits = results[outputs.FindIndex(o => o.Name == "logits")].GetTensorDataAsSpan<float>().ToArray();
        Assert.That(logits.All(float.IsFinite) && logits.Any(v => v != 0), Is.True, "logits are finite and not all zero");
    }

    [Test]
    public void AModelNameThatIsAPathIsRefused()
    {
        Assert.That(Invoke("--attention", "linear-elu", "--out", _dir, "--name", "../escape"), Is.EqualTo(1));
        Assert.That(Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(_dir)!).Any(p => p.EndsWith("escape", StringComparison.Ordinal)), Is.False);
    }
}
