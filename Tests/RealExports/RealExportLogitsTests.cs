using System.Text.Json;
using NUnit.Framework;
using OnnxAttention.Cli.Commands;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.RealExports;

/// <summary>
/// The decoders of ../shared/fixtures/real-exports (Optimum Llama at opsets 14 and 17 and in float16, Optimum GPT-2,
/// Optimum's merged decoder, the onnxruntime-genai builder's GroupQueryAttention Llama), swapped and run through the
/// `logits` command, reproduce the fixture's float64 reference logits for softmax, window:16 and linear-elu, whole
/// and token by token. On the padded batch (left padding for Optimum, right padding for genai) the softmax rule is
/// compared where the mask is 1, for every rule: the swapped operators take the mask as their token_mask.
/// </summary>
[TestFixture]
[NonParallelizable]
public class RealExportLogitsTests
{
    private static readonly string[] Fixtures =
    [
        "llama-optimum-past-opset14", "llama-optimum-past-opset17", "llama-optimum-past-fp16", "gpt2-optimum-past-opset14", "llama-optimum-merged", "llama-genai-gqa",
    ];

    private static readonly (string Rule, string Logits)[] Rules = [("softmax", "softmax"), ("window:16", "window16"), ("linear-elu", "linear_elu")];

    private string _dir = "";

    [SetUp]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("real-exports-").FullName;

    [TearDown]
    public void RemoveDirectory() => Directory.Delete(_dir, recursive: true);

    public static IEnumerable<TestCaseData> Cases() =>
        from f in Fixtures
        from r in Rules
        from step in new[] { false, true }
        select new TestCaseData(f, r.Rule, r.Logits, step).SetName($"{f} {r.Rule} {(step ? "step-by-step" : "whole")}");

    private static string Dir(string fixture) => Path.Combine(TestPaths.Shared, "fixtures", "real-exports", fixture);

    private static string Data(string fixture, string name) => Path.Combine(Dir(fixture), "test_data", name + ".pb");

    private static long[] Ints(string path) => Tensors.ToInt64Array(TensorProto.Parser.ParseFrom(File.ReadAllBytes(path)));

    private static float[] Floats(string path) => Tensors.ToFloatArray(TensorProto.Parser.ParseFrom(File.ReadAllBytes(path)));

    /// <summary>1e-3 for float32 models; a float16 model's own tolerance against the float32 references.</summary>
    private static Tolerance ToleranceOf(string fixture)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir(fixture), "fixture.json")));
        return json.RootElement.GetProperty("dtype").GetString() == "float16"
            ? new Tolerance(json.RootElement.GetProperty("tolerance_vs_reference").GetDouble(), 0)
            : new Tolerance(1e-3, 0);
    }

    private (int Code, string Text, string Error, string Output) Logits(string fixture, string rule, bool step, bool padded)
    {
        var suffix = padded ? "_padded" : "";
        var output = Path.Combine(_dir, "logits.pb");
        var args = new List<string> { "--model", Path.Combine(Dir(fixture), "model.onnx"), "--attention", rule, "--input-ids", Data(fixture, "input_ids" + suffix), "--out", output };
        if (padded) args.AddRange(["--attention-mask", Data(fixture, "attention_mask" + suffix)]);
        if (File.Exists(Data(fixture, "position_ids" + suffix))) args.AddRange(["--position-ids", Data(fixture, "position_ids" + suffix)]);
        if (step) args.Add("--step-by-step");
        var (code, text, error) = CommandLineRun.Invoke(LogitsCommand.Create(), [.. args]);
        return (code, text, error, output);
    }

    [TestCaseSource(nameof(Cases))]
    public void PlainBatchReproducesTheReference(string fixture, string rule, string logits, bool step)
    {
        var (code, _, error, output) = Logits(fixture, rule, step, padded: false);
        Assert.That(code, Is.Zero, error);
        TensorAssert.Close(Floats(output), Floats(Data(fixture, "logits_" + logits)), ToleranceOf(fixture), $"{fixture} {rule}");
    }

    [TestCaseSource(nameof(Cases))]
    public void PaddedBatchReproducesTheReferenceWhereTheMaskIsOne(string fixture, string rule, string logits, bool step)
    {
        var (code, _, error, output) = Logits(fixture, rule, step, padded: true);
        Assert.That(code, Is.Zero, error);
        var mask = Ints(Data(fixture, "attention_mask_padded"));
        var got = Floats(output);
        var want = Floats(Data(fixture, "logits_" + logits + "_padded"));
        var vocab = want.Length / mask.Length;
        Assert.That(mask, Does.Contain(0L), "the padded batch has pads");
        for (var t = 0; t < mask.Length; t++)
        {
            if (mask[t] == 0)
            {
                Assert.That(got.AsSpan(t * vocab, vocab).ToArray(), Is.All.Zero, $"token {t} is a pad: its logits are written as 0");
                continue;
            }
            TensorAssert.Close(got.AsSpan(t * vocab, vocab), want.AsSpan(t * vocab, vocab), ToleranceOf(fixture), $"{fixture} {rule} padded token {t}");
        }
    }
}
