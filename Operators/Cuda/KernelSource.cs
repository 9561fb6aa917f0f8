namespace OnnxAttention.Operators.Cuda;

/// <summary>
/// One CUDA C source file of Cuda/Kernels (an embedded resource) and the extern "C" entry points its launch
/// contract promises. The text is read when the catalog is first used, never at operator registration.
/// </summary>
public sealed class KernelSource
{
    internal KernelSource(string fileName, string text, IReadOnlyList<string> entryPoints)
    {
        FileName = fileName;
        Text = text;
        EntryPoints = entryPoints;
    }

    /// <summary>The file name, e.g. linear_attention_decode.cu; NVRTC names the program after it in diagnostics.</summary>
    public string FileName { get; }

    public string Text { get; }

    /// <summary>The kernels (PTX .entry names) the file defines.</summary>
    public IReadOnlyList<string> EntryPoints { get; }

    public override string ToString() => FileName;
}
