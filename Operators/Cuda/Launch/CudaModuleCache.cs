using System.Collections.Concurrent;
using OnnxAttention.Operators.Cuda.Driver;
using OnnxAttention.Operators.Cuda.Specializations;

namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// The loaded modules, one per (CUDA context, specialisation): a specialisation's PTX is compiled (or read from the
/// PTX disk cache) and loaded with cuModuleLoadData once per context, its functions looked up once, and their
/// dynamic shared memory limits raised once. Modules live as long as the process (ORT's CUDA EP keeps its primary
/// context for the process too). NOT RUN ON A GPU YET.
/// </summary>
internal static class CudaModuleCache
{
    /// <summary>Folder for cached PTX; unset: the user's local application data folder.</summary>
    public const string PtxCacheVariable = "ONNXATTENTION_PTX_CACHE";

    private static readonly ConcurrentDictionary<(nint Context, KernelSpecialization Specialization), Lazy<Module>> Modules = new();
    private static readonly ConcurrentDictionary<(nint Context, int Attribute), int> Attributes = new();
    private static readonly Lazy<KernelCompiler> Compiler = new(() => new KernelCompiler(PtxCacheDirectory()));

    public sealed class Module(nint handle)
    {
        private readonly ConcurrentDictionary<string, Lazy<nint>> _functions = new(StringComparer.Ordinal);
        private readonly ConcurrentDictionary<(nint Function, int Bytes), bool> _sharedLimits = new();

        public nint Handle { get; } = handle;

        public nint Function(CudaDriverLibrary driver, string entryPoint) =>
            _functions.GetOrAdd(entryPoint, e => new Lazy<nint>(() => driver.GetFunction(Handle, e))).Value;

        /// <summary>Raises the function's dynamic shared memory limit to at least <paramref name="bytes"/> once.</summary>
        public void EnsureDynamicShared(CudaDriverLibrary driver, nint function, int bytes)
        {
            // The default limit is 48 KiB; only the prefill asks for more, always with the same size per specialisation.
            if (bytes > 48 * 1024 && _sharedLimits.TryAdd((function, bytes), true))
            {
                driver.SetMaxDynamicSharedBytes(function, bytes);
            }
        }
    }

    public static Module For(CudaDriverLibrary driver, nint context, KernelSpecialization specialization) =>
        Modules.GetOrAdd((context, specialization), key => new Lazy<Module>(() =>
        {
            var capability = ComputeCapability(driver, key.Context);
            var compiled = Compiler.Value.Compile(key.Specialization.Source, key.Specialization.Defines, capability);
            return new Module(driver.LoadModule(compiled.Ptx));
        }, LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    /// <summary>major * 10 + minor of the context's device.</summary>
    public static int ComputeCapability(CudaDriverLibrary driver, nint context) =>
        DeviceAttribute(driver, context, CudaDriverLibrary.AttributeComputeCapabilityMajor) * 10 +
        DeviceAttribute(driver, context, CudaDriverLibrary.AttributeComputeCapabilityMinor);

    /// <summary>A device attribute of the context's device (the context is current on the calling thread), read once.</summary>
    public static int DeviceAttribute(CudaDriverLibrary driver, nint context, int attribute) =>
        Attributes.GetOrAdd((context, attribute), key => driver.DeviceAttribute(key.Attribute));

    private static string? PtxCacheDirectory()
    {
        var configured = Environment.GetEnvironmentVariable(PtxCacheVariable);
        if (!string.IsNullOrEmpty(configured))
        {
            return configured;
        }
        var local = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData);
        return string.IsNullOrEmpty(local) ? null : Path.Combine(local, "OnnxAttention", "ptx");
    }
}
