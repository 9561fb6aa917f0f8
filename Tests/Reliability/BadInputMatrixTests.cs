using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Tests.Native;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Reliability;

/// <summary>
/// The same hostile inputs for every operator, through ORT: each either fails with an ORT error that names the
/// tensor, or (NaN, empty batch) gives its documented result; and the session then still computes the right answer.
/// </summary>
[TestFixture]
public class BadInputMatrixTests
{
    public static IEnumerable<string> Operators() =>
        OperatorRegistry.Operators.Where(o => o.Schema.RunsOnCpu && o.Schema.Inputs[0].ElementType == OrtElementType.Float).Select(o => o.Schema.Name);

    private static (TypedModelRunner Runner, AllOperatorsModel All) Open(string opName)
    {
        var op = OperatorRegistry.Operators.Single(o => o.Schema.RunsOnCpu && o.Schema.Name == opName && o.Schema.Inputs[0].ElementType == OrtElementType.Float);
        var all = AllOperatorsModel.Build([op], declareShapes: false);
        return (new TypedModelRunner(all.Model), all);
    }

    private static Dictionary<string, TypedTensor> Run(TypedModelRunner runner, AllOperatorsModel all, Dictionary<string, TypedTensor> inputs) =>
        runner.Run(inputs, all.Outputs.ToArray());

    private static void AssertSame(Dictionary<string, TypedTensor> got, Dictionary<string, TypedTensor> want, string what)
    {
        foreach (var (name, t) in want)
        {
            Assert.That(got[name].Shape, Is.EqualTo(t.Shape), $"{what}: {name} shape");
            Assert.That(got[name].Data, Is.EqualTo(t.Data), $"{what}: {name} values");
        }
    }

    /// <summary>Every input of the operator, one at a time: one extra dimension, one dimension fewer, last dim off by one.</summary>
    [TestCaseSource(nameof(Operators))]
    public void MisshapenInputsFailWithTheirNameAndTheSessionRecovers(string opName)
    {
        var (runner, all) = Open(opName);
        using var _ = runner;
        var good = Run(runner, all, all.Inputs);
        foreach (var name in all.Inputs.Keys)
        {
            var original = all.Inputs[name];
            var tensorName = name[(name.IndexOf('_', name.IndexOf('_') + 1) + 1)..];
            foreach (var (label, shape) in new[]
            {
                ("extra dim", original.Shape.Append(1L).ToArray()),
                ("missing dim", original.Shape.Length > 1 ? original.Shape[..^1].Select((d, i) => i == original.Shape.Length - 2 ? d * original.Shape[^1] : d).ToArray() : [1L, original.Shape[0]]),
            })
            {
                var bad = new Dictionary<string, TypedTensor>(all.Inputs) { [name] = original with { Shape = shape } };
                var e = Assert.Throws<OnnxRuntimeException>(() => Run(runner, all, bad), $"{opName}: {tensorName} with {label} was accepted");
                Assert.That(e!.Message, Does.Contain(tensorName.Replace("past_", "")).Or.Contain(tensorName), $"{opName}: {tensorName} with {label}: the message should name it");
                AssertSame(Run(runner, all, all.Inputs), good, $"{opName}: after a bad {tensorName}");
            }
        }
    }

    [TestCaseSource(nameof(Operators))]
    public void NaNInTheQueryStaysInItsOwnRowsAndStateIsUntouched(string opName)
    {
        var (runner, all) = Open(opName);
        using var _ = runner;
        var good = Run(runner, all, all.Inputs);
        var queryName = all.Inputs.Keys.First(k => k.EndsWith("_query", StringComparison.Ordinal));
        var q = (float[])((float[])all.Inputs[queryName].Data).Clone();
        q[0] = float.NaN; // batch 0, position 0, head 0
        var poisoned = Run(runner, all, new Dictionary<string, TypedTensor>(all.Inputs) { [queryName] = all.Inputs[queryName] with { Data = q } });
        var output = all.Outputs.First(o => o.EndsWith("_output", StringComparison.Ordinal));
        var y = (float[])poisoned[output].Data;
        Assert.That(float.IsNaN(y[0]), Is.True, $"{opName}: NaN must show in the output it reaches, not be hidden");
        var yGood = (float[])good[output].Data;
        var rowWidth = (int)good[output].Shape[2];
        var seq = (int)good[output].Shape[1];
        // Batch row 1 never saw the NaN.
        Assert.That(y.AsSpan(seq * rowWidth).ToArray(), Is.EqualTo(yGood.AsSpan(seq * rowWidth).ToArray()), $"{opName}: other rows changed");
        // Queries never enter the state: every state output is exactly as without the NaN.
        foreach (var o in all.Outputs.Where(o => o != output)) Assert.That(poisoned[o].Data, Is.EqualTo(good[o].Data), $"{opName}: {o}");
        AssertSame(Run(runner, all, all.Inputs), good, $"{opName}: after NaN");
    }

    /// <summary>Zero-size dimensions: an empty batch gives empty outputs; an empty head dimension is refused by name.</summary>
    [TestCaseSource(nameof(Operators))]
    public void ZeroSizeDimensionsAreHandled(string opName)
    {
        var (runner, all) = Open(opName);
        using var _ = runner;
        var good = Run(runner, all, all.Inputs);

        // Batch 0 everywhere: nothing to compute, every output has batch 0.
        var emptyBatch = all.Inputs.ToDictionary(kv => kv.Key, kv => kv.Value with { Data = Array.CreateInstance(kv.Value.Data.GetType().GetElementType()!, 0), Shape = [0, .. kv.Value.Shape[1..]] });
        var result = Run(runner, all, emptyBatch);
        foreach (var o in all.Outputs) Assert.That(result[o].Shape[0], Is.Zero, $"{opName}: {o} batch");

        // Head dimension 0 in the query: refused, naming the query.
        var queryName = all.Inputs.Keys.First(k => k.EndsWith("_query", StringComparison.Ordinal));
        var q = all.Inputs[queryName];
        var noWidth = new Dictionary<string, TypedTensor>(all.Inputs) { [queryName] = q with { Data = Array.Empty<float>(), Shape = [q.Shape[0], q.Shape[1], 0] } };
        var e = Assert.Throws<OnnxRuntimeException>(() => Run(runner, all, noWidth));
        Assert.That(e!.Message, Does.Contain("query"), opName);
        AssertSame(Run(runner, all, all.Inputs), good, $"{opName}: after zero sizes");
    }
}
