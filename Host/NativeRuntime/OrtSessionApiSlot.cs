namespace OnnxAttention.Host.NativeRuntime;

/// <summary>
/// Positions in the OrtApi function table of the members the C-API session path calls (the operators' own slots are
/// in <c>Operators/Interop/OrtApiSlot</c>). Counted in ONNX Runtime 1.29's header, checked against both the 1.29
/// header (artifacts/ort-1.29) and 1.31.1's (NuGet) by <c>Tests/NativeRuntime/OrtSessionApiSlotTests</c>.
/// The newest, EpDevice_MemoryInfo, arrived with API version 23; the table we ask for is version 24 because our
/// operators, registered through the same table, need it (<see cref="OrtLibrary.RequestedApiVersion"/>).
/// </summary>
public enum OrtSessionApiSlot
{
    CreateEnv = 3,
    CreateSessionFromArray = 8,
    CreateSessionOptions = 10,
    SetSessionLogSeverityLevel = 22,
    SetIntraOpNumThreads = 24,
    CreateRunOptions = 39,
    CreateTensorAsOrtValue = 48,
    CreateTensorWithDataAsOrtValue = 49,
    GetTensorMutableData = 51,
    GetTensorElementType = 60,
    GetDimensionsCount = 61,
    GetDimensions = 62,
    GetTensorTypeAndShape = 65,
    CreateMemoryInfo = 68,
    CreateCpuMemoryInfo = 69,
    MemoryInfoGetName = 71,
    AllocatorFree = 76,
    GetAllocatorWithDefaultOptions = 78,
    ReleaseEnv = 92,
    ReleaseMemoryInfo = 94,
    ReleaseSession = 95,
    ReleaseValue = 96,
    ReleaseRunOptions = 97,
    ReleaseTensorTypeAndShapeInfo = 99,
    ReleaseSessionOptions = 100,
    CreateAllocator = 131,
    ReleaseAllocator = 132,
    RunWithBinding = 133,
    CreateIoBinding = 134,
    ReleaseIoBinding = 135,
    BindInput = 136,
    BindOutput = 137,
    BindOutputToDevice = 138,
    GetBoundOutputValues = 140,
    ClearBoundInputs = 141,
    ClearBoundOutputs = 142,
    SynchronizeBoundOutputs = 203,
    SessionOptionsAppendExecutionProvider_CUDA_V2 = 204,
    CreateCUDAProviderOptions = 205,
    UpdateCUDAProviderOptions = 206,
    ReleaseCUDAProviderOptions = 208,
    RegisterExecutionProviderLibrary = 301,
    UnregisterExecutionProviderLibrary = 302,
    GetEpDevices = 303,
    SessionOptionsAppendExecutionProvider_V2 = 304,
    EpDevice_EpName = 312,
    EpDevice_MemoryInfo = 374,
}
