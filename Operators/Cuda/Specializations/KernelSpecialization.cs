namespace OnnxAttention.Operators.Cuda.Specializations;

/// <summary>
/// A kernel source with the defines that specialise it and the launch shape its header comment promises (block
/// size, dynamic shared memory). The defines include EXPECTED_THREADS (and EXPECTED_SHARED_BYTES where shared
/// memory is dynamic), which the source checks with static_assert: a host formula that drifts from the kernel
/// fails to compile instead of launching with the wrong shape.
/// </summary>
public abstract record KernelSpecialization
{
    public abstract KernelSource Source { get; }

    /// <summary>Threads per block (blockDim.x; blockDim.y = blockDim.z = 1).</summary>
    public abstract int ThreadsPerBlock { get; }

    /// <summary>Dynamic shared memory per block, in bytes.</summary>
    public virtual int DynamicSharedBytes => 0;

    /// <summary>The defines of this specialisation, the checks included.</summary>
    public IReadOnlyList<KernelDefine> Defines
    {
        get
        {
            var defines = new List<KernelDefine>(SpecializationDefines()) { new("EXPECTED_THREADS", ThreadsPerBlock) };
            if (DynamicSharedBytes > 0)
            {
                defines.Add(new KernelDefine("EXPECTED_SHARED_BYTES", DynamicSharedBytes));
            }
            return defines;
        }
    }

    protected abstract IEnumerable<KernelDefine> SpecializationDefines();

    protected static int CeilDiv(int a, int b) => (a + b - 1) / b;

    protected static int RoundUp(int a, int b) => CeilDiv(a, b) * b;

    protected static void RequireRange(string name, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be in [{min}, {max}]");
        }
    }
}
