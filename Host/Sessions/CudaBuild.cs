using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
#if ONNXRUNTIME_GPU
using OnnxAttention.Operators.Cuda.Registration;
#endif

namespace OnnxAttention.Host.Sessions;

/// <summary>
/// The one place that differs between the CPU and the GPU build (OnnxRuntimeFlavor, Directory.Build.props): only the
/// GPU build links ORT's CUDA provider and the CUDA operator variants.
/// </summary>
public static class CudaBuild
{
#if ONNXRUNTIME_GPU
    public const bool Included = true;
#else
    public const bool Included = false;
#endif

    /// <summary>
    /// Appends ORT's CUDA execution provider on <paramref name="deviceId"/> and registers every operator with its CUDA
    /// variant (the CPU ones stay for nodes ORT leaves on the CPU).
    /// </summary>
    public static void Configure(SessionOptions options, int deviceId)
    {
#if ONNXRUNTIME_GPU
        // ORT also logs a failed provider load on stderr; the exception below says it in one line.
        var env = OrtEnv.Instance();
        var level = env.EnvLogLevel;
        env.EnvLogLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL;
        try
        {
            options.AppendExecutionProvider_CUDA(deviceId);
        }
        catch (OnnxRuntimeException e)
        {
            throw Unavailable(e);
        }
        finally
        {
            env.EnvLogLevel = level;
        }
        options.RegisterOnnxAttentionCudaOperators();
#else
        _ = options;
        throw NotIncluded(deviceId);
#endif
    }

    /// <summary>Refuses a CUDA target in the CPU build up front, before any model work.</summary>
    public static void Require(ExecutionTarget target)
    {
        if (target.IsCuda && !Included) throw NotIncluded(target.DeviceId);
    }

    private static ExecutionProviderUnavailableException NotIncluded(int deviceId) =>
        new($"--ep cuda:{deviceId} needs the GPU build (dotnet build -p:OnnxRuntimeFlavor=Gpu, see README); this is the CPU build of ONNX Runtime {OrtEnv.Instance().GetVersionString()}");

    /// <summary>
    /// What ORT's CUDA provider library (1.32.0, CUDA 13) needs from the machine: the driver and the CUDA libraries
    /// it is linked against (its NEEDED entries).
    /// </summary>
    public static IReadOnlyList<string> ProviderDependencies { get; } =
        ["libcuda.so.1", "libcudart.so.13", "libcublas.so.13", "libcublasLt.so.13", "libcurand.so.10"];

    /// <summary>
    /// ORT's reason, on one line, for a CUDA provider that could not be loaded or started, with the libraries it needs
    /// that this process cannot load (ORT's own message says only "Failed to load shared library").
    /// </summary>
    public static ExecutionProviderUnavailableException Unavailable(Exception e)
    {
        var missing = ProviderDependencies.Where(name =>
        {
            if (!NativeLibrary.TryLoad(name, out var handle)) return true;
            NativeLibrary.Free(handle);
            return false;
        }).ToList();
        var reason = string.Join(' ', e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return new($"the CUDA execution provider is unavailable here: {reason}" +
                   (missing.Count > 0 ? $" (cannot load {string.Join(", ", missing)}: it needs an NVIDIA driver and CUDA 13 on the library path)" : ""), e);
    }
}
