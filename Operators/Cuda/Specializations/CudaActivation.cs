namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>The activation element type a kernel is compiled for (define ACT_TYPE); states stay float32.</summary>
public enum CudaActivation
{
    Float32 = 0,
    Float16 = 1,
    BFloat16 = 2,
}
