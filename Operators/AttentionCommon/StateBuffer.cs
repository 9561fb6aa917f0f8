using System.Runtime.InteropServices;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Operators.AttentionCommon;

/// <summary>
/// Where one piece of state lives during a call: the node's output tensor when the node wires that output,
/// else native scratch, so a graph that only wants the attention output need not keep the state.
/// </summary>
internal unsafe struct StateBuffer : IDisposable
{
    private bool _owned;
    private long _capacity;

    public void* Data { get; private set; }

    public long Length { get; private set; }

    public static StateBuffer For(in KernelContext context, int outputIndex, ReadOnlySpan<long> shape, int elementSize)
    {
        long n = 1;
        foreach (var d in shape)
        {
            n *= d;
        }
        if (TryOutput(context, outputIndex, shape, out var data))
        {
            return new StateBuffer { Data = data, Length = n };
        }
        // Zeroed, as the kernels expect; from blocks kept between calls, since fresh pages cost a fault each (ScratchBlocks).
        var bytes = Math.Max(1, n) * elementSize;
        var block = ScratchBlocks.Shared.Rent(bytes, out var capacity);
        NativeMemory.Clear(block, (nuint)bytes);
        return new StateBuffer { Data = block, Length = n, _owned = true, _capacity = capacity };
    }

    /// <summary>The present of state <paramref name="state"/> of <paramref name="contract"/>, shaped for this call.</summary>
    public static StateBuffer For<TAttributes>(in KernelContext context, OperatorContract<TAttributes> contract, int state, TAttributes a,
        long batch, long keyDim, long valueDim)
    {
        Span<long> buffer = stackalloc long[StateShapes.MaxRank];
        var shape = contract.Shape(state, a, batch, keyDim, valueDim, buffer);
        var elementSize = contract.States[state].IsPosition ? sizeof(long) : sizeof(float);
        return For(context, OperatorContract<TAttributes>.PresentOutput(state), shape, elementSize);
    }

    public readonly Span<T> AsSpan<T>() where T : unmanaged => new(Data, checked((int)Length));

    /// <summary>
    /// Copies the past state in, unless a host bound one buffer as both past input and present output (the state
    /// updated in place, as decoders do to avoid moving the whole state every step): then it is already here.
    /// </summary>
    public readonly void SeedFrom<T>(in Tensor past) where T : unmanaged
    {
        if (past.Data == Data)
        {
            return;
        }
        past.AsReadOnlySpan<T>().CopyTo(AsSpan<T>());
    }

    /// <summary>The state a call starts from: the past input when the node got one, else zeros.</summary>
    public readonly void Seed<T>(in KernelContext context, int pastInput, bool hasPast) where T : unmanaged
    {
        if (hasPast)
        {
            SeedFrom<T>(context.Input(pastInput));
        }
        else
        {
            AsSpan<T>().Clear();
        }
    }

    public void Dispose()
    {
        if (_owned)
        {
            ScratchBlocks.Shared.Return(Data, _capacity);
            Data = null;
            _owned = false;
        }
    }

    private static bool TryOutput(in KernelContext context, int index, ReadOnlySpan<long> shape, out void* data)
    {
        var present = context.TryOutput(index, shape, out var tensor);
        data = present ? tensor.Data : null;
        return present;
    }
}
