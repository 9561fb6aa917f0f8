namespace OnnxAttention.Operators.Cuda;

/// <summary>What one successful NVRTC compilation produced: the PTX text and the (possibly empty) warning log.</summary>
public sealed record NvrtcCompilation(string Ptx, string Log);
