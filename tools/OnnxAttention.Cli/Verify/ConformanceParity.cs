using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Io;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Cli.Verify;

/// <summary>
/// The ONNX backend node tests for Attention (a folder of cases: model.onnx, test_data_set_0/input_N.pb and
/// output_N.pb) swapped with the softmax rule and run on a target, each output within 1e-3 (the suite's own
/// tolerance) of the suite's expected output. On CUDA each case is first tried with ORT's CPU fallback disabled, so
/// the line says whether every node ran on the CUDA provider. Cases with a past KV cache of their own are left out
/// (their swap would start from the suite's past, which the softmax rule's growing cache does not take as its start),
/// as in the CPU tests.
/// </summary>
public static class ConformanceParity
{
    public const double Tolerance = 1e-3;

    public sealed record Result(string Case, string Verdict, string Detail)
    {
        public bool Failed => Verdict == "FAIL";

        public string Line() => $"{Verdict,-4}  conformance {Case}: {Detail}";
    }

    public static IReadOnlyList<string> CaseNames(string root) =>
        [.. Directory.EnumerateDirectories(root).Where(d => File.Exists(Path.Combine(d, "model.onnx"))).Select(Path.GetFileName).OfType<string>()
            .Order(StringComparer.Ordinal)];

    public static Result Run(string root, string name, ExecutionTarget target)
    {
        var dir = Path.Combine(root, name);
        try
        {
            var model = ModelFile.Load(Path.Combine(dir, "model.onnx"));
            SwapReport report;
            try
            {
                report = AttentionSwapper.Swap(model, new SoftmaxRule());
            }
            catch (GraphException e) when (e.Message.StartsWith("no attention to replace", StringComparison.Ordinal))
            {
                // The swap's refusal is host-side logic (the CPU tests pin which cases it takes); nothing runs on the target.
                return new(name, "SKIP", "the softmax swap refuses it: " + OperatorParity.OneLine(e));
            }
            if (report.Replaced.Count == 0) return new(name, "FAIL", "the softmax swap recognised no attention");
            var inputs = Read(dir, "input");
            var expected = Read(dir, "output");
            List<float[]> got;
            string placement;
            try
            {
                (got, placement) = RunOn(model, report.State, inputs, expected.Count, target);
            }
            catch (OnnxRuntimeException e) when (RefusedUnswapped(dir, inputs, expected.Count, target) is { } why)
            {
                return new(name, "SKIP", $"ORT refuses the unswapped model too ({why}); swapped: {OperatorParity.OneLine(e)}");
            }
            var worst = 0.0;
            var where = "";
            for (var o = 0; o < expected.Count; o++)
            {
                var want = ToFloats(expected[o]);
                if (want.Length != got[o].Length) return new(name, "FAIL", $"output {o} has {got[o].Length} elements, expected {want.Length}");
                for (var i = 0; i < want.Length; i++)
                {
                    var r = Math.Abs(got[o][i] - want[i]) / (Tolerance + Tolerance * Math.Abs(want[i]));
                    if (double.IsNaN(r) || r > worst)
                    {
                        worst = double.IsNaN(r) ? double.PositiveInfinity : r;
                        where = $"output {o}[{i}] = {got[o][i]:G6}, expected {want[i]:G6}";
                    }
                }
            }
            var text = $"worst {worst.ToString("0.000", CultureInfo.InvariantCulture)} of 1e-3{(where.Length > 0 ? $" at {where}" : "")}{placement}";
            return new(name, worst <= 1 ? "PASS" : "FAIL", text);
        }
        catch (Exception e)
        {
            return new(name, "FAIL", OperatorParity.OneLine(e));
        }
    }

    /// <summary>ORT's error for the case's own model on the target, or null when it runs.</summary>
    private static string? RefusedUnswapped(string dir, IReadOnlyList<TensorProto> inputs, int outputCount, ExecutionTarget target)
    {
        try
        {
            var original = ModelFile.Load(Path.Combine(dir, "model.onnx"));
            _ = Run(original, [], inputs, outputCount, SessionFactory.Create(original, 1, target));
            return null;
        }
        catch (OnnxRuntimeException e)
        {
            var message = e.Message.ReplaceLineEndings(" ").Trim();
            return message.Length > 160 ? message[..160] + "..." : message;
        }
    }

    private static (List<float[]> Outputs, string Placement) RunOn(ModelProto model, IReadOnlyList<StateTensor> state, IReadOnlyList<TensorProto> inputs,
        int outputCount, ExecutionTarget target)
    {
        if (!target.IsCuda) return (Run(model, state, inputs, outputCount, SessionFactory.Create(model, 1, target)), "");
        OwnedSession session;
        var placement = "; every node on CUDA";
        try
        {
            session = SessionFactory.Create(model, 1, options =>
            {
                CudaBuild.Configure(options, target.DeviceId);
                options.AddSessionConfigEntry("session.disable_cpu_ep_fallback", "1");
            });
        }
        catch (OnnxRuntimeException e) when (e.Message.Contains("fallback", StringComparison.OrdinalIgnoreCase))
        {
            placement = "; some nodes on the CPU (ORT: " + e.Message.ReplaceLineEndings(" ").Trim() + ")";
            session = SessionFactory.Create(model, 1, target);
        }
        return (Run(model, state, inputs, outputCount, session), placement);
    }

    private static List<float[]> Run(ModelProto model, IReadOnlyList<StateTensor> state, IReadOnlyList<TensorProto> inputs, int outputCount, OwnedSession session)
    {
        using (session)
        {
            var names = model.Graph.Input.Take(inputs.Count).Select(i => i.Name).ToList();
            var outputs = model.Graph.Output.Take(outputCount).Select(o => o.Name).ToList();
            var values = inputs.Select(ToOrtValue).ToList();
            try
            {
                foreach (var s in state.Where(s => !names.Contains(s.Past)))
                {
                    var shape = s.ShapeFor(s.Shape[0].Value ?? inputs[0].Dims[0]);
                    if (shape.Aggregate(1L, (a, d) => a * d) != 0) throw new InvalidOperationException($"state '{s.Past}' does not start empty");
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
                return [.. results.Select(ActivationValues.ReadFloats)];
            }
            finally
            {
                foreach (var v in values) v.Dispose();
            }
        }
    }

    private static List<TensorProto> Read(string dir, string kind)
    {
        var data = Path.Combine(dir, "test_data_set_0");
        var list = new List<TensorProto>();
        for (var i = 0; File.Exists(Path.Combine(data, $"{kind}_{i}.pb")); i++)
        {
            list.Add(TensorProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(data, $"{kind}_{i}.pb"))));
        }
        if (list.Count == 0) throw new InvalidDataException($"{data} has no {kind}_0.pb");
        return list;
    }

    /// <summary>A float32 or float16 conformance tensor as float32 values.</summary>
    public static float[] ToFloats(TensorProto t) => (TensorProto.Types.DataType)t.DataType switch
    {
        TensorProto.Types.DataType.Float => Tensors.ToFloatArray(t),
        TensorProto.Types.DataType.Float16 => [.. Halves(t).Select(h => (float)h)],
        var other => throw new InvalidDataException($"output '{t.Name}' has element type {other}, not a float type"),
    };

    private static Half[] Halves(TensorProto t) =>
        t.RawData.IsEmpty ? [.. t.Int32Data.Select(x => BitConverter.UInt16BitsToHalf((ushort)x))] : MemoryMarshal.Cast<byte, Half>(t.RawData.Span).ToArray();

    /// <summary>A conformance input (float32, float16, int64 or bool) as an ORT value.</summary>
    public static OrtValue ToOrtValue(TensorProto t)
    {
        var shape = t.Dims.ToArray();
        return (TensorProto.Types.DataType)t.DataType switch
        {
            TensorProto.Types.DataType.Float => OrtValue.CreateTensorValueFromMemory(Tensors.ToFloatArray(t), shape),
            TensorProto.Types.DataType.Float16 => OrtValue.CreateTensorValueFromMemory(Halves(t).Select(h => new Float16(BitConverter.HalfToUInt16Bits(h))).ToArray(), shape),
            TensorProto.Types.DataType.Int64 => OrtValue.CreateTensorValueFromMemory(Tensors.ToInt64Array(t), shape),
            TensorProto.Types.DataType.Bool => OrtValue.CreateTensorValueFromMemory(
                (t.RawData.IsEmpty ? t.Int32Data.Select(x => x != 0) : t.RawData.Span.ToArray().Select(x => x != 0)).ToArray(), shape),
            var other => throw new InvalidDataException($"input '{t.Name}' has element type {other}"),
        };
    }
}
