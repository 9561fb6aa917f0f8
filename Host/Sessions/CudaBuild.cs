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
        try
        {
            options.AppendExecutionProvider_CUDA(deviceId);
        }
        catch (OnnxRuntimeException e)
        {
            throw Unavailable(e);
        }
        options.RegisterOnnxAttentionCudaOperators();
#else
        _ = options;
        throw new ExecutionProviderUnavailableException(
            $"--ep cuda:{deviceId} needs the GPU build (dotnet build -p:OnnxRuntimeFlavor=Gpu, see README); this is the CPU build of ONNX Runtime {OrtEnv.Instance().GetVersionString()}");
#endif
    }

    /// <summary>ORT's reason, on one line, for a CUDA provider that could not be loaded or started.</summary>
    public static ExecutionProviderUnavailableException Unavailable(Exception e) =>
        new($"the CUDA execution provider is unavailable here: {string.Join(' ', e.Message.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))}", e);
}
