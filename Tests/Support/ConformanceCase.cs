using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Cli.Verify;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// One ONNX backend node test: model.onnx plus test_data_set_0/input_N.pb and output_N.pb (TensorProto), input N
/// feeding the model's N-th graph input and output N its N-th graph output.
/// </summary>
public sealed class ConformanceCase
{
    public static string Root => Path.Combine(TestPaths.Shared, "conformance", "onnx-v1.22.0-node");

    private ConformanceCase(string name, string dir)
    {
        Name = name;
        Dir = dir;
    }

    public string Name { get; }

    public string Dir { get; }

    public static ConformanceCase Load(string name) => new(name, Path.Combine(Root, name));

    /// <summary>The case names, in the order of the suite's listing.</summary>
    public static IEnumerable<string> Names() =>
        File.ReadLines(Path.Combine(Root, "..", "onnx-v1.22.0-node.cases.txt")).Where(l => l.Length > 0).Select(l => l[..l.IndexOf(':')]);

    public ModelProto Model() => ModelFile.Load(Path.Combine(Dir, "model.onnx"));

    public IReadOnlyList<TensorProto> Inputs() => Read("input");

    public IReadOnlyList<TensorProto> Outputs() => Read("output");

    private IReadOnlyList<TensorProto> Read(string kind)
    {
        var data = Path.Combine(Dir, "test_data_set_0");
        var list = new List<TensorProto>();
        for (var i = 0; File.Exists(Path.Combine(data, $"{kind}_{i}.pb")); i++)
        {
            list.Add(TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(data, $"{kind}_{i}.pb"))));
        }
        return list;
    }

    /// <summary>
    /// Runs <paramref name="model"/> (the case's model, or it swapped) on the case's inputs, feeding each added
    /// state input its start value (a zero-length KV cache); the case's outputs (the model's first graph outputs)
    /// as float32.
    /// </summary>
    public IReadOnlyList<float[]> Run(ModelProto model, IReadOnlyList<StateTensor>? state = null)
    {
        var inputs = Inputs();
        var names = model.Graph.Input.Take(inputs.Count).Select(i => i.Name).ToList();
        var outputs = model.Graph.Output.Take(Outputs().Count).Select(o => o.Name).ToList();
        using var session = SessionFactory.Create(model, intraOpThreads: 1);
        using var values = new DisposableList<OrtValue>();
        values.AddRange(inputs.Select(ToOrtValue));
        foreach (var s in state ?? [])
        {
            var shape = s.ShapeFor(s.Shape[0].Value ?? inputs[0].Dims[0]);
            if (StaticTensorCount(shape) != 0) throw new InvalidOperationException($"state '{s.Past}' does not start empty");
            names.Add(s.Past);
            values.Add(s.ElementType switch
            {
                TensorProto.Types.DataType.Float => OrtValue.CreateTensorValueFromMemory(Array.Empty<float>(), shape),
                TensorProto.Types.DataType.Float16 => OrtValue.CreateTensorValueFromMemory(Array.Empty<Float16>(), shape),
                var other => throw new InvalidOperationException($"state '{s.Past}' of element type {other}"),
            });
        }
        using var runOptions = new RunOptions();
        using var results = session.Session.Run(runOptions, names, values, outputs);
        return results.Select(ToFloats).ToList();
    }

    private static long StaticTensorCount(long[] shape) => shape.Aggregate(1L, (a, d) => a * d);

    public static float[] ToFloats(TensorProto t) => ConformanceParity.ToFloats(t);

    private static OrtValue ToOrtValue(TensorProto t) => ConformanceParity.ToOrtValue(t);

    private static float[] ToFloats(OrtValue v) => v.GetTensorTypeAndShape().ElementDataType switch
    {
        Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float => v.GetTensorDataAsSpan<float>().ToArray(),
        Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16 => v.GetTensorDataAsSpan<Float16>().ToArray().Select(h => (float)h).ToArray(),
        var other => throw new InvalidOperationException($"output of element type {other}"),
    };
}
