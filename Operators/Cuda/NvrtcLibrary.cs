using System.Runtime.InteropServices;
using System.Text;

namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// One loaded NVRTC shared library and the entry points we call, bound by name with
/// <see cref="NativeLibrary.GetExport"/> (no static import, so a machine without CUDA loads this assembly fine).
/// nvrtcResult is a C enum (int); nvrtcProgram is an opaque pointer.
/// </summary>
internal sealed unsafe class NvrtcLibrary
{
    private readonly delegate* unmanaged<int*, int*, int> _version;
    private readonly delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int> _createProgram;
    private readonly delegate* unmanaged<nint, int, byte**, int> _compileProgram;
    private readonly delegate* unmanaged<nint, nuint*, int> _getProgramLogSize;
    private readonly delegate* unmanaged<nint, byte*, int> _getProgramLog;
    private readonly delegate* unmanaged<nint, nuint*, int> _getPtxSize;
    private readonly delegate* unmanaged<nint, byte*, int> _getPtx;
    private readonly delegate* unmanaged<nint*, int> _destroyProgram;
    private readonly delegate* unmanaged<int, byte*> _getErrorString;
    // Since CUDA 11.2; older libraries leave these null and the architectures are inferred from the version.
    private readonly delegate* unmanaged<int*, int> _getNumSupportedArchs;
    private readonly delegate* unmanaged<int*, int> _getSupportedArchs;

    private readonly NativeLibraryHandle _library;

    private NvrtcLibrary(string name, NativeLibraryHandle library)
    {
        Name = name;
        _library = library;
        _version = (delegate* unmanaged<int*, int*, int>)library.Export("nvrtcVersion");
        _createProgram = (delegate* unmanaged<nint*, byte*, byte*, int, byte**, byte**, int>)library.Export("nvrtcCreateProgram");
        _compileProgram = (delegate* unmanaged<nint, int, byte**, int>)library.Export("nvrtcCompileProgram");
        _getProgramLogSize = (delegate* unmanaged<nint, nuint*, int>)library.Export("nvrtcGetProgramLogSize");
        _getProgramLog = (delegate* unmanaged<nint, byte*, int>)library.Export("nvrtcGetProgramLog");
        _getPtxSize = (delegate* unmanaged<nint, nuint*, int>)library.Export("nvrtcGetPTXSize");
        _getPtx = (delegate* unmanaged<nint, byte*, int>)library.Export("nvrtcGetPTX");
        _destroyProgram = (delegate* unmanaged<nint*, int>)library.Export("nvrtcDestroyProgram");
        _getErrorString = (delegate* unmanaged<int, byte*>)library.Export("nvrtcGetErrorString");
        _getNumSupportedArchs = (delegate* unmanaged<int*, int>)library.TryExport("nvrtcGetNumSupportedArchs");
        _getSupportedArchs = (delegate* unmanaged<int*, int>)library.TryExport("nvrtcGetSupportedArchs");

        int major, minor;
        Check(_version(&major, &minor), "nvrtcVersion");
        Version = new Version(major, minor);
        SupportedArchitectures = ReadSupportedArchitectures();
    }

    /// <summary>The file name or path the library was loaded by.</summary>
    public string Name { get; }

    /// <summary>NVRTC's own version (11.8 for Debian's libnvrtc11.2 package), part of every PTX cache key.</summary>
    public Version Version { get; }

    /// <summary>The sm/compute numbers this NVRTC can target (e.g. 80, 86, 89, 90), ascending.</summary>
    public IReadOnlyList<int> SupportedArchitectures { get; }

    /// <summary>Loads <paramref name="path"/> as NVRTC; null with a reason when it does not load or lacks an entry point.</summary>
    public static NvrtcLibrary? TryLoad(string path, out string failure)
    {
        var library = NativeLibraryHandle.TryLoad(path);
        if (library is null)
        {
            failure = $"{path}: not found or not loadable";
            return null;
        }
        try
        {
            failure = "";
            return new NvrtcLibrary(path, library);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or NvrtcException)
        {
            library.Dispose();
            failure = $"{path}: {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// Compiles <paramref name="source"/> (named <paramref name="name"/> in diagnostics) with the given in-memory
    /// headers (include name, text) and options. Throws <see cref="NvrtcException"/> carrying the log on failure.
    /// </summary>
    public NvrtcCompilation Compile(string source, string name, IReadOnlyList<KeyValuePair<string, string>> headers,
        IReadOnlyList<string> options)
    {
        var strings = new List<nint>();
        byte* Utf8(string s)
        {
            var p = Marshal.StringToCoTaskMemUTF8(s);
            strings.Add(p);
            return (byte*)p;
        }

        var headerTexts = new byte*[headers.Count];
        var headerNames = new byte*[headers.Count];
        var optionTexts = new byte*[options.Count];
        try
        {
            for (var i = 0; i < headers.Count; i++)
            {
                headerNames[i] = Utf8(headers[i].Key);
                headerTexts[i] = Utf8(headers[i].Value);
            }
            for (var i = 0; i < options.Count; i++)
            {
                optionTexts[i] = Utf8(options[i]);
            }
            fixed (byte** texts = headerTexts, names = headerNames, opts = optionTexts)
            {
                nint created = 0;
                Check(_createProgram(&created, Utf8(source), Utf8(name), headers.Count, texts, names), "nvrtcCreateProgram");
                using var owned = new NvrtcProgramHandle(created, _destroyProgram, _library);
                var program = owned.DangerousGetHandle();
                var result = _compileProgram(program, options.Count, opts);
                var log = ReadLog(program);
                if (result != 0)
                {
                    throw new NvrtcException(
                        $"NVRTC {Version} could not compile {name} ({ErrorString(result)}) with options: {string.Join(' ', options)}",
                        result, log);
                }
                return new NvrtcCompilation(ReadPtx(program), log);
            }
        }
        finally
        {
            foreach (var p in strings)
            {
                Marshal.FreeCoTaskMem(p);
            }
        }
    }

    private string ReadLog(nint program)
    {
        nuint size;
        Check(_getProgramLogSize(program, &size), "nvrtcGetProgramLogSize");
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes)
        {
            Check(_getProgramLog(program, p), "nvrtcGetProgramLog");
        }
        return Encoding.UTF8.GetString(bytes).TrimEnd('\0').Trim();
    }

    private string ReadPtx(nint program)
    {
        nuint size;
        Check(_getPtxSize(program, &size), "nvrtcGetPTXSize");
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes)
        {
            Check(_getPtx(program, p), "nvrtcGetPTX");
        }
        return Encoding.UTF8.GetString(bytes).TrimEnd('\0');
    }

    private IReadOnlyList<int> ReadSupportedArchitectures()
    {
        if (_getNumSupportedArchs == null || _getSupportedArchs == null)
        {
            // CUDA 11.0/11.1 predate the query; their newest targets were sm_80 and sm_86.
            return Version >= new Version(11, 1) ? [52, 60, 61, 70, 75, 80, 86] : [52, 60, 61, 70, 75, 80];
        }
        int count;
        Check(_getNumSupportedArchs(&count), "nvrtcGetNumSupportedArchs");
        var archs = new int[count];
        fixed (int* p = archs)
        {
            Check(_getSupportedArchs(p), "nvrtcGetSupportedArchs");
        }
        Array.Sort(archs);
        return archs;
    }

    private string ErrorString(int result)
    {
        var text = _getErrorString(result);
        return text == null ? $"nvrtcResult {result}" : Marshal.PtrToStringUTF8((nint)text) ?? $"nvrtcResult {result}";
    }

    private void Check(int result, string call)
    {
        if (result != 0)
        {
            throw new NvrtcException($"{call} failed: {ErrorString(result)}", result, "");
        }
    }
}
