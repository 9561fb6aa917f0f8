using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Cli.Bench;

/// <summary>The machine's own limits, measured in the same run as the operators: memory bandwidth and ORT's MatMul rate.</summary>
public static class MachineLimits
{
    /// <summary>Read+write bytes per second of a large copy split over all cores (best of several).</summary>
    public static double MemoryBandwidthBytesPerSecond(int megabytes = 256)
    {
        var n = megabytes * 1024 * 1024 / sizeof(float);
        var source = new float[n];
        var target = new float[n];
        TensorPrimitives.Add(source, 1f, source);
        var parts = Environment.ProcessorCount;
        var chunk = n / parts;
        var best = double.MaxValue;
        for (var round = 0; round < 6; round++)
        {
            var t = System.Diagnostics.Stopwatch.GetTimestamp();
            Parallel.For(0, parts, p => source.AsSpan(p * chunk, chunk).CopyTo(target.AsSpan(p * chunk, chunk)));
            best = Math.Min(best, System.Diagnostics.Stopwatch.GetElapsedTime(t).TotalSeconds);
        }
        return 2.0 * parts * chunk * sizeof(float) / best;
    }

    /// <summary>
    /// Read+write bytes per second of copying a buffer of <paramref name="bytes"/> that stays where it is between
    /// copies (in cache when it fits): the floor for a step that must read and write that much state once. Split over
    /// <paramref name="parts"/> threads like the operators' work items; best of many repetitions.
    /// </summary>
    public static double CopyBytesPerSecond(long bytes, int parts)
    {
        var n = (int)(bytes / sizeof(float));
        var source = new float[n];
        var target = new float[n];
        TensorPrimitives.Add(source, 1f, source);
        parts = Math.Max(1, Math.Min(parts, n / 1024));
        var chunk = n / parts;
        var best = double.MaxValue;
        var total = System.Diagnostics.Stopwatch.StartNew();
        for (var round = 0; round < 2000 && (round < 20 || total.Elapsed.TotalSeconds < 0.3); round++)
        {
            var t = System.Diagnostics.Stopwatch.GetTimestamp();
            if (parts == 1) source.AsSpan(0, chunk).CopyTo(target);
            else Parallel.For(0, parts, p => source.AsSpan(p * chunk, chunk).CopyTo(target.AsSpan(p * chunk, chunk)));
            best = Math.Min(best, System.Diagnostics.Stopwatch.GetElapsedTime(t).TotalSeconds);
        }
        return 2.0 * parts * chunk * sizeof(float) / best;
    }

    /// <summary>
    /// A decode step reads and writes the whole state once: its rate against the machine's copy rate for a buffer of
    /// that size (cache-resident when it fits, so it can exceed the large-copy bandwidth) is how close it is to the floor.
    /// </summary>
    public static string StateTraffic(double stateBytes, double us, double bandwidth, int threads)
    {
        var rate = stateBytes / (us * 1e-6);
        var copy = CopyBytesPerSecond((long)(stateBytes / 2), threads > 0 ? threads : Environment.ProcessorCount);
        return $"{stateBytes / 2e6:F2} MB state read and written per step: {rate / 1e9:F1} GB/s = {rate / copy:P0} of copying that much "
               + $"({copy / 1e9:F1} GB/s), {rate / bandwidth:P0} of the large-copy bandwidth";
    }

    /// <summary>FLOP/s of ORT's own float32 MatMul on [m,k] x [k,n].</summary>
    public static double OrtMatMulFlops(int m = 1024, int k = 1024, int n = 1024, int threads = 0)
    {
        const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
        var model = new ModelBuilder("matmul").Input("a", F, m, k).Input("b", F, k, n).Node("MatMul", ["a", "b"], ["c"]).Output("c", F, m, n).Build();
        using var session = SessionFactory.Create(model, threads);
        var a = new float[m * k];
        var b = new float[k * n];
        var c = new float[m * n];
        TensorPrimitives.Add(a, 0.5f, a);
        TensorPrimitives.Add(b, 0.25f, b);
        using var av = OrtValue.CreateTensorValueFromMemory(a, [m, k]);
        using var bv = OrtValue.CreateTensorValueFromMemory(b, [k, n]);
        using var cv = OrtValue.CreateTensorValueFromMemory(c, [m, n]);
        using var binding = session.Session.CreateIoBinding();
        binding.BindInput("a", av);
        binding.BindInput("b", bv);
        binding.BindOutput("c", cv);
        using var options = new RunOptions();
        var us = Timing.MedianMicroseconds(() => session.Session.RunWithBinding(options, binding), warmup: 3, minRuns: 10, budgetSeconds: 1.0);
        return 2.0 * m * k * n / (us * 1e-6);
    }
}
