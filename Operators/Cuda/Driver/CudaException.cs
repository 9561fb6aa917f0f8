namespace OnnxAttention.Operators.Cuda.Driver;

/// <summary>
/// A CUDA driver API call returned an error. The message names the call and gives CUDA's own name and description
/// of the CUresult (cuGetErrorName / cuGetErrorString), e.g. "cuLaunchKernel failed: CUDA_ERROR_INVALID_VALUE (1):
/// invalid argument".
/// </summary>
public sealed class CudaException : Exception
{
    public CudaException(string call, int result, string errorName, string errorString)
        : base($"{call} failed: {errorName} ({result}): {errorString}")
    {
        Call = call;
        Result = result;
    }

    /// <summary>The driver function that failed, e.g. cuModuleLoadData.</summary>
    public string Call { get; }

    /// <summary>The CUresult code.</summary>
    public int Result { get; }
}

/// <summary>The CUDA driver library (libcuda.so.1 / nvcuda.dll) could not be loaded; the message says what was tried.</summary>
public sealed class CudaUnavailableException(string message) : Exception(message);
