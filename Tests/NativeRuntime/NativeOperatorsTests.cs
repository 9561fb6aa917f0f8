using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Host.NativeRuntime;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Tests.Native;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.NativeRuntime;

/// <summary>
/// Every registered operator (Tests/Native/AllOperatorsModel) in a session of the 1.29 core made through the C API
/// in this process, against the same model in-process on the managed binding's 1.31.1.
/// </summary>
[TestFixture]
[NonParallelizable]
public class NativeOperatorsTests
{
    /// <summary>A C-API session of one model; runs it on named inputs, outputs allocated by ORT in host memory.</summary>
    private sealed unsafe class NativeRunner(OrtLibrary library, AllOperatorsModel all, int threads = 1) : IDisposable
    {
        private readonly NativeSession _session = new(library, all.Model.ToByteArray(), NativeSessionSettings.Cpu(intraOpThreads: threads));

        public Dictionary<string, TypedTensor> Run(IReadOnlyDictionary<string, TypedTensor> feeds)
        {
            using var binding = _session.CreateBinding();
            var inputs = new List<NativeValue>();
            try
            {
                foreach (var (name, t) in feeds)
                {
                    NativeValue value = t.Data switch
                    {
                        float[] f => Filled(_session.Host<float>(t.Shape), f),
                        long[] l => Filled(_session.Host<long>(t.Shape), l),
                        Float16[] h => Filled(_session.Host<Half>(t.Shape), h.Select(x => BitConverter.UInt16BitsToHalf(x.value)).ToArray()),
                        BFloat16[] bf => Filled(_session.Host<BFloat16>(t.Shape), bf),
                        _ => throw new ArgumentException($"input '{name}': {t.Data.GetType()}"),
                    };
                    inputs.Add(value);
                    binding.Input(name, value.Handle);
                }
                foreach (var name in all.Outputs) binding.OutputOnDevice(name);
                _session.Run(binding);
                var outputs = binding.OutputValues();
                var result = new Dictionary<string, TypedTensor>();
                for (var i = 0; i < outputs.Length; i++)
                {
                    using var value = new NativeValue(_session.Api, outputs[i]);
                    var shape = value.Shape;
                    var count = (int)shape.Aggregate(1L, (a, d) => a * d);
                    var data = _session.Api.GetTensorMutableData(value.Handle);
                    result[all.Outputs[i]] = value.ElementType switch
                    {
                        OrtElementType.Float => new TypedTensor(new ReadOnlySpan<float>(data, count).ToArray(), shape),
                        OrtElementType.Int64 => new TypedTensor(new ReadOnlySpan<long>(data, count).ToArray(), shape),
                        OrtElementType.Float16 => new TypedTensor(new ReadOnlySpan<ushort>(data, count).ToArray().Select(b => new Float16(b)).ToArray(), shape),
                        OrtElementType.BFloat16 => new TypedTensor(new ReadOnlySpan<BFloat16>(data, count).ToArray(), shape),
                        var other => throw new InvalidOperationException($"output '{all.Outputs[i]}': element type {other}"),
                    };
                }
                return result;
            }
            finally
            {
                foreach (var v in inputs) v.Dispose();
            }
        }

        public void Dispose() => _session.Dispose();
    }

    private static HostTensor<T> Filled<T>(HostTensor<T> tensor, T[] data) where T : unmanaged
    {
        data.CopyTo(tensor.Span);
        return tensor;
    }

    // Two threads: the kernels' ParallelFor runs on the 1.29 core's own intra-op pool, reached through its table.
    [TestCase(OrtCores.Fetched, 1)]
    [TestCase(OrtCores.Fetched, 2)]
    [TestCase(OrtCores.Managed, 1)]
    public void EveryOperatorGivesTheInProcessResults(string core, int threads)
    {
        var library = OrtCores.Load(core);
        var all = AllOperatorsModel.Build();
        Assert.That(all.Missing, Is.Empty);
        using var inProcess = new TypedModelRunner(all.Model, intraOpThreads: 1);
        var want = inProcess.Run(all.Inputs, [.. all.Outputs]);
        using var native = new NativeRunner(library, all, threads);
        var got = native.Run(all.Inputs);
        Assert.That(got.Keys, Is.EquivalentTo(all.Outputs));
        foreach (var name in all.Outputs)
        {
            Assert.That(got[name].Shape, Is.EqualTo(want[name].Shape), $"{name}: shape");
            Assert.That(got[name].Data.GetType(), Is.EqualTo(want[name].Data.GetType()), $"{name}: element type");
            switch (want[name].Data)
            {
                case float[] f:
                    TensorAssert.Close(got[name].Floats, f, Tolerance.Float32, $"{name} on ORT {core}");
                    break;
                case long[] l:
                    Assert.That(got[name].Longs, Is.EqualTo(l), $"{name} on ORT {core}");
                    break;
                case Float16[] h:
                    TensorAssert.Close(((Float16[])got[name].Data).Select(x => (float)x).ToArray(), h.Select(x => (float)x).ToArray(),
                        Tolerance.Float16, $"{name} on ORT {core}");
                    break;
                case BFloat16[] bf:
                    TensorAssert.Close(((BFloat16[])got[name].Data).Select(x => (float)x).ToArray(), bf.Select(x => (float)x).ToArray(),
                        Tolerance.BFloat16, $"{name} on ORT {core}");
                    break;
                default:
                    Assert.Fail($"{name}: unexpected output type {want[name].Data.GetType()}");
                    break;
            }
        }
    }

    [Test]
    public void BadInputGivesOurMessageThroughThe129CoreAndItsSessionKeepsWorking()
    {
        var library = OrtCores.Load(OrtCores.Fetched);
        var all = AllOperatorsModel.Build();
        var name = all.Inputs.Keys.First(k => k.StartsWith("LinearAttention_f32_", StringComparison.Ordinal) && k.EndsWith("_past_state", StringComparison.Ordinal));
        var good = all.Inputs[name];
        var bad = new Dictionary<string, TypedTensor>(all.Inputs)
        {
            [name] = new TypedTensor(good.Data, [good.Shape[0], good.Shape[1], good.Shape[3], good.Shape[2]]),
        };
        const string Expected = "past_state has shape [2, 2, 6, 8]; expected [batch, kv_num_heads, head_dim, v_head_dim] = [2, 2, 8, 6]";
        using var native = new NativeRunner(library, all);
        var e = Assert.Throws<OrtException>(() => native.Run(bad));
        Assert.That(e!.Message, Does.Contain(Expected));
        using var inProcess = new TypedModelRunner(all.Model, intraOpThreads: 1);
        var name0 = all.Outputs.First(o => o.Contains("_f32_", StringComparison.Ordinal));
        TensorAssert.Close(native.Run(all.Inputs)[name0].Floats, inProcess.Run(all.Inputs, name0)[name0].Floats, Tolerance.Float32, "after the failure");
    }
}
