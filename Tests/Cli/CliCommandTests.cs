using System.CommandLine;
using Google.Protobuf;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cli;

/// <summary>The onnx-attention commands as a user runs them (parsed arguments, exit code, printed text).</summary>
[TestFixture]
[NonParallelizable] // redirects Console
public class CliCommandTests
{
    private string _dir = "";

    [SetUp]
    public void Folder()
    {
        _dir = Path.Combine(Path.GetTempPath(), "onnx-attention-cli", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    [TearDown]
    public void Clean() => Directory.Delete(_dir, recursive: true);

    private static (int Code, string Out, string Err) Invoke(Command command, params string[] args) => CommandLineRun.Invoke(command, args);

    private static string Fixture(string name, string file) => Path.Combine(TestPaths.Shared, "fixtures", "exported-decoders", name, file);

    [Test]
    public void InspectListsTheLayers()
    {
        var (code, output, _) = Invoke(InspectCommand.Create(), Fixture("llama-gqa-eager-dynamo", "model.onnx"));
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain("layer 0: MatMul/Softmax attention: 4 query heads, 2 KV heads, head dim 16, scale 0.25, causal"));
        Assert.That(output, Does.Contain("layer 1:"));
    }

    [Test]
    public void InspectExplainsAModelWithoutAttention()
    {
        var path = Path.Combine(_dir, "relu.onnx");
        File.WriteAllBytes(path, new ModelBuilder().Input("x", TensorProto.Types.DataType.Float, 2).Node("Relu", ["x"], ["y"])
            .Output("y", TensorProto.Types.DataType.Float, 2).Build().ToByteArray());
        var (code, output, _) = Invoke(InspectCommand.Create(), path);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(output, Does.Contain("no attention found"));
    }

    [Test]
    public void InspectShowsContribOperatorsAndWhyRulesWouldLeaveThem()
    {
        var gqa = Path.Combine(_dir, "gqa.onnx");
        File.WriteAllBytes(gqa, Swapping.ContribAttentionModels.GroupQueryAttention(new Swapping.ContribAttentionModels.Gqa { LocalWindowSize = 3 }).ToByteArray());
        var (code, output, _) = Invoke(InspectCommand.Create(), gqa);
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain("layer 0: com.microsoft.GroupQueryAttention: 4 query heads, 2 KV heads, head dim 8, scale 0.353553, causal, mask: causal, " +
            "local window of 3 keys at com.microsoft.GroupQueryAttention 'gqa'"));
        Assert.That(output, Does.Contain("  softmax would leave it as it is: the attention is a local window of 3 keys"));
        Assert.That(output, Does.Not.Contain("linear-* would leave it"));

        var mha = Path.Combine(_dir, "mha.onnx");
        File.WriteAllBytes(mha, Swapping.ContribAttentionModels.MultiHeadAttention(new Swapping.ContribAttentionModels.Mha { PaddingMask = true }).ToByteArray());
        (code, output, _) = Invoke(InspectCommand.Create(), mha);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(output, Does.Contain("not attention we can replace: com.microsoft.MultiHeadAttention 'mha': a key_padding_mask ('key_padding_mask') is not supported"));
    }

    [Test]
    public void InspectShowsAKvCacheThatBecomesStateAndAPaddingMask()
    {
        var checkpoint = OnnxAttention.Graphs.Llama2c.Llama2cCheckpoint.Load(Llama2c.LlamaGraphTests.CheckpointPath);
        var path = Path.Combine(_dir, "kv.onnx");
        File.WriteAllBytes(path, OnnxAttention.Graphs.Llama2c.LlamaGraphBuilder.Build(checkpoint, new OnnxAttention.Graphs.Llama2c.LlamaGraphOptions { KvCache = true }).ToByteArray());
        var (code, output, _) = Invoke(InspectCommand.Create(), path);
        Assert.That(code, Is.Zero);
        Assert.That(output, Does.Contain("layer 4: MatMul/Softmax attention: 8 query heads, 4 KV heads, head dim 8, scale 0.353553, causal, mask: causal (computed from shapes only), " +
            "KV cache 'past_key_values.4.key'/'past_key_values.4.value' -> 'present.4.key'/'present.4.value' (can become state)"));
        Assert.That(output, Does.Not.Contain("would leave it"));

        File.WriteAllBytes(path, OnnxAttention.Graphs.Llama2c.LlamaGraphBuilder.Build(checkpoint, new OnnxAttention.Graphs.Llama2c.LlamaGraphOptions { KvCache = true, AttentionMaskInput = true }).ToByteArray());
        (code, output, _) = Invoke(InspectCommand.Create(), path);
        Assert.That(output, Does.Contain("mask: causal + padding from graph input 'attention_mask' (run to check)"));
        Assert.That(output, Does.Not.Contain("would leave it"));
    }

    [Test]
    public void InspectRefusesGarbageWithAMessage()
    {
        var path = Path.Combine(_dir, "garbage.onnx");
        File.WriteAllBytes(path, [1, 2, 3, 0xff, 0xff]);
        var (code, _, error) = Invoke(InspectCommand.Create(), path);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("is not a valid ONNX model"));
    }

    [Test]
    public void LogitsStepByStepReproducesTheFixture()
    {
        var output = Path.Combine(_dir, "logits.pb");
        var (code, text, error) = Invoke(LogitsCommand.Create(), "--model", Fixture("gpt2-eager-dynamo", "model.onnx"), "--attention", "linear-elu",
            "--input-ids", Fixture("gpt2-eager-dynamo", Path.Combine("test_data", "input_ids.pb")), "--out", output, "--step-by-step");
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("token by token"));
        var got = Tensors.ToFloatArray(TensorProto.Parser.ParseFrom(File.ReadAllBytes(output)));
        var want = Tensors.ToFloatArray(TensorProto.Parser.ParseFrom(File.ReadAllBytes(Fixture("gpt2-eager-dynamo", Path.Combine("test_data", "logits_linear_elu.pb")))));
        TensorAssert.Close(got, want, Tolerance.Conformance, "logits");
    }

    [Test]
    public void ConvertWritesAModelThatInspectRecognisesAsSwapped()
    {
        var output = Path.Combine(_dir, "swapped.onnx");
        var (code, text, error) = Invoke(ConvertCommand.Create(), Fixture("llama-gqa-sdpa-dynamo18", "model.onnx"), "--attention", "linear-elu", "--out", output);
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("past_state.0 [batch, 2, 16, 16]"));
        var (code2, text2, _) = Invoke(InspectCommand.Create(), output);
        Assert.That(code2, Is.Zero);
        Assert.That(text2, Does.Contain("already swapped by OnnxAttention (rule linear-elu)"));
    }

    [Test]
    public void ConvertRejectsAnUnknownRule()
    {
        var (code, _, error) = Invoke(ConvertCommand.Create(), Fixture("gpt2-eager-dynamo", "model.onnx"), "--attention", "quadratic", "--out", Path.Combine(_dir, "x.onnx"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("unknown attention rule 'quadratic'"));
    }

    [Test]
    public void GenerateRunsTheMainJob()
    {
        var (code, text, error) = Invoke(GenerateCommand.Create(), "--attention", "linear-elu", "--max-tokens", "8");
        Assert.That(code, Is.Zero, error);
        Assert.That(text, Does.Contain("5 attention layers -> linear-elu"));
        Assert.That(text, Does.Contain("decode: 8 tokens"));
    }

    [Test]
    public void BenchMemoryWritesItsTableCsvAndPlot()
    {
        var (code, text, error) = Invoke(BenchMemoryCommand.Create(), "--tokens", "300", "--softmax-tokens", "200", "--out", _dir);
        Assert.That(code, Is.Zero, error);
        Assert.That(File.Exists(Path.Combine(_dir, "bench-memory.png")), Is.True);
        var csv = File.ReadAllLines(Path.Combine(_dir, "bench-memory.csv"));
        Assert.That(csv.Any(l => l.StartsWith("linear-elu,300,", StringComparison.Ordinal)), Is.True, string.Join("\n", csv));
        Assert.That(csv.Any(l => l.StartsWith("softmax,200,", StringComparison.Ordinal)), Is.True, string.Join("\n", csv));
    }
}
