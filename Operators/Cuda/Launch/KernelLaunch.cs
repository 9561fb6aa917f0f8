using OnnxAttention.Operators.Cuda.Specializations;

namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>What one kernel argument is, as the CUDA C signature declares it.</summary>
public enum KernelArgumentKind
{
    /// <summary>A device pointer (any element type); 0 is the kernel's null.</summary>
    Pointer,
    /// <summary>A C <c>int</c> (32 bits).</summary>
    Int,
    /// <summary>A C <c>float</c>.</summary>
    Float,
}

/// <summary>
/// One argument of a launch, named as the kernel's parameter is named in its .cu file, so a test can compare the
/// packed list with the signature parsed from the source.
/// </summary>
public readonly record struct KernelArgument(string Name, KernelArgumentKind Kind, long Bits)
{
    public static KernelArgument Pointer(string name, nint pointer) => new(name, KernelArgumentKind.Pointer, pointer);

    public static KernelArgument Int(string name, int value) => new(name, KernelArgumentKind.Int, value);

    public static KernelArgument Float(string name, float value) => new(name, KernelArgumentKind.Float, BitConverter.SingleToInt32Bits(value));

    public nint PointerValue => Kind == KernelArgumentKind.Pointer ? (nint)Bits : throw new InvalidOperationException($"{Name} is not a pointer");

    public int IntValue => Kind == KernelArgumentKind.Int ? (int)Bits : throw new InvalidOperationException($"{Name} is not an int");

    public float FloatValue => Kind == KernelArgumentKind.Float
        ? BitConverter.Int32BitsToSingle((int)Bits)
        : throw new InvalidOperationException($"{Name} is not a float");
}

/// <summary>
/// One kernel launch: which entry point of which specialisation, the grid (x, y; z = 1), the block (x threads;
/// y = z = 1, every kernel here is one-dimensional), the dynamic shared memory, and the arguments in order.
/// </summary>
public sealed record KernelLaunch(
    KernelSpecialization Specialization,
    string EntryPoint,
    (int X, int Y) Grid,
    int Threads,
    int DynamicSharedBytes,
    IReadOnlyList<KernelArgument> Arguments)
{
    public override string ToString() =>
        $"{EntryPoint}<<<({Grid.X}, {Grid.Y}), {Threads}, {DynamicSharedBytes}>>>({string.Join(", ", Arguments.Select(a => a.Name))})";
}
