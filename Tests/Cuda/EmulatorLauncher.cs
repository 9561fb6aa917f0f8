using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using OnnxAttention.Operators.Cuda;
using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// An <see cref="ICudaLauncher"/> on the host emulation of tools/cuda-emulator: each specialisation's embedded .cu
/// source is compiled by g++ into a shared library (a fiber per CUDA thread, real barriers) with one exported
/// wrapper per entry point that unpacks the launch's argument array exactly as cuLaunchKernel would (the wrapper's
/// casts are generated from the signature parsed out of the .cu file), and "device memory" is host memory filled
/// with NaN bytes, as uninitialised device memory would hold garbage. So the C# launch path (plans, argument
/// packing, offsets, chaining, scratch) runs end to end without a GPU. Libraries are cached under the temp folder
/// by a hash of everything that decides them.
/// </summary>
public sealed unsafe partial class EmulatorLauncher(int multiprocessors = 132, int maxDynamicSharedBytes = 227 * 1024) : ICudaLauncher, IDisposable
{
    private static readonly ConcurrentDictionary<KernelSpecialization, Lazy<nint>> Libraries = new();
    private readonly List<nint> _allocations = [];

    public int MultiprocessorCount { get; } = multiprocessors;

    public int MaxDynamicSharedBytes { get; } = maxDynamicSharedBytes;

    public int LaunchCount { get; private set; }

    /// <summary>Null when g++ (C++20) and python3 are there; otherwise why the emulation cannot run.</summary>
    public static string? Unavailable => LazyUnavailable.Value;

    private static readonly Lazy<string?> LazyUnavailable = new(() =>
    {
        foreach (var tool in new[] { "g++", "python3" })
        {
            try
            {
                var (code, _) = Run(tool, "--version", Path.GetTempPath());
                if (code != 0)
                {
                    return $"{tool} --version failed";
                }
            }
            catch (System.ComponentModel.Win32Exception)
            {
                return $"{tool} is not installed";
            }
        }
        return OperatingSystem.IsWindows() ? "the emulation builds a Linux shared library" : null;
    });

    public void Launch(KernelLaunch launch)
    {
        var library = Libraries.GetOrAdd(launch.Specialization, s => new Lazy<nint>(() => Build(s))).Value;
        var entry = (delegate* unmanaged<uint, uint, uint, uint, void**, void>)NativeLibrary.GetExport(library, "emu_" + launch.EntryPoint);
        var count = launch.Arguments.Count;
        var values = stackalloc long[count];
        var pointers = stackalloc void*[count];
        for (var i = 0; i < count; i++)
        {
            values[i] = launch.Arguments[i].Bits;
            pointers[i] = &values[i];
        }
        entry((uint)launch.Grid.X, (uint)launch.Grid.Y, (uint)launch.Threads, (uint)launch.DynamicSharedBytes, pointers);
        LaunchCount++;
    }

    public nint Allocate(long bytes)
    {
        var pointer = (nint)NativeMemory.Alloc((nuint)Math.Max(bytes, 1));
        new Span<byte>((void*)pointer, (int)bytes).Fill(0xFF);
        _allocations.Add(pointer);
        return pointer;
    }

    public void Free(nint pointer)
    {
        if (!_allocations.Remove(pointer))
        {
            throw new InvalidOperationException($"free of {pointer:x}, which this launcher did not allocate or already freed");
        }
        NativeMemory.Free((void*)pointer);
    }

    public void Copy(nint destination, nint source, long bytes) =>
        Buffer.MemoryCopy((void*)source, (void*)destination, bytes, bytes);

    public void Zero(nint destination, long bytes) => new Span<byte>((void*)destination, (int)bytes).Clear();

    /// <summary>Scratch still held: a plan must free everything it allocates.</summary>
    public int Outstanding => _allocations.Count;

    public void Dispose()
    {
        foreach (var pointer in _allocations)
        {
            NativeMemory.Free((void*)pointer);
        }
        _allocations.Clear();
    }

    [GeneratedRegex(@"\b__restrict__\b")]
    private static partial Regex Restrict();

    private static nint Build(KernelSpecialization specialization)
    {
        var source = specialization.Source;
        var wrapper = new StringBuilder();
        wrapper.AppendLine("#include \"cuda_emu.h\"");
        wrapper.AppendLine("inline float4 g_dynamic_shared[(256 * 1024) / 16];");
        wrapper.AppendLine($"#include \"{source.FileName}\"");
        foreach (var entry in source.EntryPoints)
        {
            var parameters = KernelSignatures.Of(entry);
            var unpacked = string.Join(", ", parameters.Select((p, i) =>
                $"*({Restrict().Replace(p.Declaration[..^p.Name.Length], "").Trim()}*)a[{i}]"));
            wrapper.AppendLine($"extern \"C\" void emu_{entry}(unsigned gx, unsigned gy, unsigned bx, unsigned shared, void** a) {{");
            wrapper.AppendLine("    if (shared) std::memset(g_dynamic_shared, 0x7f, shared);");
            wrapper.AppendLine($"    launch(dim3{{gx, gy, 1}}, dim3{{bx, 1, 1}}, [&] {{ {entry}({unpacked}); }});");
            wrapper.AppendLine("}");
        }
        var emulator = Path.Combine(TestPaths.RepositoryRoot, "tools", "cuda-emulator", "emu");
        var files = new SortedDictionary<string, string>(StringComparer.Ordinal)
        {
            ["wrapper.cpp"] = wrapper.ToString(),
            ["cuda_emu.h"] = File.ReadAllText(Path.Combine(emulator, "cuda_emu.h")),
            ["emu_fp.h"] = File.ReadAllText(Path.Combine(emulator, "emu_fp.h")),
            ["make_common.py"] = File.ReadAllText(Path.Combine(emulator, "make_common.py")),
        };
        foreach (var s in KernelSources.All)
        {
            // Dynamic shared memory becomes the host array above (as tools/cuda-emulator/run.sh does).
            files[s.FileName] = s.Text.Replace("extern __shared__ float4 shared_raw[];", "float4* shared_raw = g_dynamic_shared;", StringComparison.Ordinal);
        }
        foreach (var (name, text) in KernelSources.Headers)
        {
            files[name] = text;
        }
        var options = specialization.Defines.OrderBy(d => d.Name, StringComparer.Ordinal).Select(d => d.Option).ToArray();
        var key = new StringBuilder(string.Join('\n', options));
        foreach (var (name, text) in files)
        {
            key.Append('\n').Append(name).Append('\n').Append(text.Length).Append('\n').Append(text);
        }
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key.ToString())))[..24];
        var folder = Path.Combine(Path.GetTempPath(), "onnxattention-cuda-emulator", $"{Path.GetFileNameWithoutExtension(source.FileName)}-{hash}");
        var library = Path.Combine(folder, "kernel.so");
        if (!File.Exists(library))
        {
            var work = folder + "." + Guid.NewGuid().ToString("N");
            Directory.CreateDirectory(work);
            foreach (var (name, text) in files)
            {
                File.WriteAllText(Path.Combine(work, name), text);
            }
            File.Move(Path.Combine(work, "onnx_attention_common.cuh"), Path.Combine(work, "onnx_attention_common.gpu.cuh"));
            Check(Run("python3", "make_common.py onnx_attention_common.gpu.cuh onnx_attention_common.cuh", work), "make_common.py");
            Check(Run("g++", $"-std=c++20 -O1 -w -pthread -shared -fPIC -I. {string.Join(' ', options)} wrapper.cpp -o kernel.so", work),
                $"g++ for {source.FileName} {string.Join(' ', options)}");
            try
            {
                Directory.Move(work, folder);
            }
            catch (IOException) when (File.Exists(library))
            {
                // Another process built the same library first.
            }
        }
        return NativeLibrary.Load(library);
    }

    private static void Check((int Code, string Output) result, string what)
    {
        if (result.Code != 0)
        {
            throw new InvalidOperationException($"{what} failed ({result.Code}):\n{result.Output}");
        }
    }

    private static (int Code, string Output) Run(string tool, string arguments, string directory)
    {
        var start = new ProcessStartInfo(tool, arguments)
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
