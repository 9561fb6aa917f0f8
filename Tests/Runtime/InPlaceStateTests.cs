using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using NUnit.Framework;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Tests.Native;
using DisposableList = OnnxAttention.Tests.Support.DisposableList<Microsoft.ML.OnnxRuntime.OrtValue>;

namespace OnnxAttention.Tests.Runtime;

/// <summary>
/// A host may bind one buffer as both an operator's past state input and its present state output (IO binding), so a
/// decode step updates the state where it lies instead of copying it. Every operator, float32 and float16, must then
/// give exactly what separate past and present buffers give, call after call.
/// </summary>
[TestFixture]
public class InPlaceStateTests
{
    [Test]
    public void OneBufferAsPastAndPresentGivesWhatTwoBuffersGive()
    {
        var all = AllOperatorsModel.Build();
        Assert.That(all.Missing, Is.Empty, "every operator has a sample");
        // Each operator's state inputs (after query, key, value) pair with its outputs after y, in schema order.
        var pairs = all.Covered.SelectMany(op =>
        {
            var prefix = AllOperatorsModel.Prefix(op);
            var inputs = op.Schema.Inputs.Skip(3).Select(i => $"{prefix}_{i.Name}").Where(all.Inputs.ContainsKey).ToList();
            return inputs.Select((input, j) => (Past: input, Present: $"{prefix}_{op.Schema.Outputs[1 + j].Name}"));
        }).ToList();
        Assert.That(pairs.Select(p => p.Present), Is.SubsetOf(all.Outputs));
        var plainOutputs = all.Outputs.Except(pairs.Select(p => p.Present)).ToList();

        using var session = SessionFactory.Create(all.Model, intraOpThreads: 2);
        using var runOptions = new RunOptions();

        // Two buffers: plain runs, each call's presents fed back as the next call's pasts.
        var feeds = all.Inputs.ToDictionary(kv => kv.Key, kv => (Array)kv.Value.Data.Clone());
        var separate = new List<Dictionary<string, Array>>();
        for (var call = 0; call < 3; call++)
        {
            using var values = new DisposableList();
            values.AddRange(feeds.Select(kv => Value(kv.Value, all.Inputs[kv.Key].Shape)));
            using var results = session.Session.Run(runOptions, feeds.Keys.ToList(), values, all.Outputs);
            var got = all.Outputs.Select((name, i) => (name, data: Read(results[i]))).ToDictionary(x => x.name, x => x.data);
            separate.Add(got);
            foreach (var (past, present) in pairs) feeds[past] = got[present];
        }

        // One buffer per state tensor, bound as input and output; the state never leaves it.
        var buffers = all.Inputs.ToDictionary(kv => kv.Key, kv => (Array)kv.Value.Data.Clone());
        using var owned = new DisposableList();
        owned.AddRange(buffers.Select(kv => Value(kv.Value, all.Inputs[kv.Key].Shape)));
        var byName = buffers.Keys.Zip(owned).ToDictionary(x => x.First, x => x.Second);
        using var binding = session.Session.CreateIoBinding();
        foreach (var (name, value) in byName) binding.BindInput(name, value);
        foreach (var (past, present) in pairs) binding.BindOutput(present, byName[past]);
        foreach (var name in plainOutputs) binding.BindOutputToDevice(name, OrtMemoryInfo.DefaultInstance);
        for (var call = 0; call < 3; call++)
        {
            session.Session.RunWithBinding(runOptions, binding);
            using var outputs = binding.GetOutputValues();
            var names = binding.GetOutputNames();
            for (var i = 0; i < names.Length; i++)
            {
                if (plainOutputs.Contains(names[i]))
                {
                    Assert.That(Read(outputs[i]), Is.EqualTo(separate[call][names[i]]), $"call {call}: {names[i]}");
                }
            }
            foreach (var (past, present) in pairs)
            {
                Assert.That(buffers[past], Is.EqualTo(separate[call][present]), $"call {call}: {present} (in place in {past})");
            }
        }
    }

    private static OrtValue Value(Array data, long[] shape) => data switch
    {
        float[] f => OrtValue.CreateTensorValueFromMemory(f, shape),
        long[] l => OrtValue.CreateTensorValueFromMemory(l, shape),
        Float16[] h => OrtValue.CreateTensorValueFromMemory(h, shape),
        BFloat16[] bf => OrtValue.CreateTensorValueFromMemory(bf, shape),
        _ => throw new ArgumentException($"unsupported buffer {data.GetType()}"),
    };

    private static Array Read(OrtValue value) => value.GetTensorTypeAndShape().ElementDataType switch
    {
        TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
        TensorElementType.Int64 => value.GetTensorDataAsSpan<long>().ToArray(),
        TensorElementType.Float16 => value.GetTensorDataAsSpan<Float16>().ToArray(),
        TensorElementType.BFloat16 => value.GetTensorDataAsSpan<BFloat16>().ToArray(),
        var other => throw new InvalidOperationException($"unsupported element type {other}"),
    };
}
