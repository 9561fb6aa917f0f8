using System.Runtime.InteropServices;
using NUnit.Framework;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// Host "device" memory for the fixtures that run launch plans on <see cref="EmulatorLauncher"/>: buffers start as
/// NaN bytes (fresh device memory holds garbage), everything is freed after each test, and the fixture is ignored
/// when the emulation cannot be built (no g++ or python3).
/// </summary>
public abstract unsafe class EmulatedMemory
{
    private readonly List<nint> _host = [];

    [OneTimeSetUp]
    public void RequireEmulator()
    {
        if (EmulatorLauncher.Unavailable is { } why)
        {
            Assert.Ignore($"CUDA host emulation unavailable: {why}");
        }
    }

    [TearDown]
    public void FreeHostMemory()
    {
        foreach (var p in _host)
        {
            NativeMemory.Free((void*)p);
        }
        _host.Clear();
    }

    protected static (float[] Q, float[] K, float[] V) Qkv(int batch, int seq, int qHeads, int kvHeads, int dk, int dv, int seed) =>
        (Seeded.Uniform(seed * 100 + 1, batch * seq * qHeads * dk), Seeded.Uniform(seed * 100 + 2, batch * seq * kvHeads * dk),
            Seeded.Uniform(seed * 100 + 3, batch * seq * kvHeads * dv));

    protected nint Put<T>(T[] data) where T : unmanaged
    {
        var p = Garbage(data.Length * sizeof(T));
        data.AsSpan().CopyTo(new Span<T>((void*)p, data.Length));
        return p;
    }

    /// <summary>Host memory full of NaN bytes, as fresh device memory holds garbage.</summary>
    protected nint Garbage(int bytes)
    {
        var p = (nint)NativeMemory.Alloc((nuint)Math.Max(bytes, 1));
        new Span<byte>((void*)p, bytes).Fill(0xFF);
        _host.Add(p);
        return p;
    }

    /// <summary>The past buffer itself when the state is bound in place, else a fresh one.</summary>
    protected nint Present(bool inPlace, nint past, int bytes) => inPlace ? past : Garbage(bytes);

    protected static float[] Half(float[] x) => x.Select(e => (float)(Half)e).ToArray();

    protected nint PutHalf(float[] x) => Put(x.Select(e => BitConverter.HalfToUInt16Bits((Half)e)).ToArray());

    /// <summary>Activations as the kernels take them: float32, or float16 bit patterns.</summary>
    protected nint PutActivation(float[] x, bool half) => half ? PutHalf(x) : Put(x);

    protected static float[] HalfFloats(nint p, int count) =>
        new ReadOnlySpan<ushort>((void*)p, count).ToArray().Select(b => (float)BitConverter.UInt16BitsToHalf(b)).ToArray();

    protected static float[] ToFloat(double[] x) => x.Select(e => (float)e).ToArray();

    protected static float[] Floats(nint p, int count) => new ReadOnlySpan<float>((void*)p, count).ToArray();

    protected static long[] Longs(nint p, int count) => new ReadOnlySpan<long>((void*)p, count).ToArray();

    /// <summary>A float32 device tensor against its reference.</summary>
    protected static void Close(nint p, double[] want, string what) => TensorAssert.Close(Floats(p, want.Length), want, Tolerance.Float32, what);
}
