using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>The inputs, outputs and thread pool of one Compute call.</summary>
public readonly unsafe struct KernelContext
{
    internal KernelContext(OrtApi api, nint context, KernelForms? forms = null)
    {
        Api = api;
        Handle = context;
        Forms = forms;
    }

    /// <summary>The same call seen through <paramref name="view"/> (one row of a padded batch; see <see cref="TokenMaskRows"/>).</summary>
    internal KernelContext(in KernelContext whole, RowView view)
    {
        Api = whole.Api;
        Handle = whole.Handle;
        Forms = whole.Forms;
        View = view;
    }

    /// <summary>Null for ORT's own call; otherwise the tensors one row of it sees.</summary>
    private RowView? View { get; }

    public OrtApi Api { get; }

    public nint Handle { get; }

    /// <summary>The kernel forms a test or benchmark forces on this session; null in production.</summary>
    internal KernelForms? Forms { get; }

    public int InputCount
    {
        get
        {
            if (View is not null)
            {
                return View.InputCount;
            }
            nuint n = 0;
            StatusBoundary.ThrowIfError(Api, Api.KernelContextGetInputCount(Handle, &n));
            return (int)n;
        }
    }

    /// <summary>True when the node wires input <paramref name="index"/> (optional inputs may be left out or empty).</summary>
    public bool HasInput(int index)
    {
        if (View is not null)
        {
            return View.HasInput(index);
        }
        if (index >= InputCount)
        {
            return false;
        }
        nint value = 0;
        StatusBoundary.ThrowIfError(Api, Api.KernelContextGetInput(Handle, (nuint)index, &value));
        return value != 0;
    }

    public Tensor Input(int index)
    {
        if (View is not null)
        {
            return View.Input(index);
        }
        nint value = 0;
        StatusBoundary.ThrowIfError(Api, Api.KernelContextGetInput(Handle, (nuint)index, &value));
        if (value == 0)
        {
            throw OrtException.InvalidArgument($"input {index} is missing");
        }
        int type;
        long* dims;
        nuint rank;
        void* data;
        // The by-reference query allocates nothing (GetTensorTypeAndShape would allocate an info object per call).
        StatusBoundary.ThrowIfError(Api, Api.GetTensorElementTypeAndShapeDataReference(value, &type, &dims, &rank));
        StatusBoundary.ThrowIfError(Api, Api.GetTensorData(value, &data));
        return new Tensor((OrtElementType)type, dims, (int)rank, data);
    }

    /// <summary>Allocates output <paramref name="index"/> with the given shape and returns a writable view.</summary>
    public Tensor Output(int index, ReadOnlySpan<long> shape) =>
        TryOutput(index, shape, out var tensor)
            ? tensor
            : throw OrtException.InvalidArgument($"output {index} is required but the node leaves it out");

    /// <summary>
    /// Allocates output <paramref name="index"/> unless the node leaves that optional output out (past the node's
    /// output count, or an empty name: ORT then hands back no value).
    /// </summary>
    public bool TryOutput(int index, ReadOnlySpan<long> shape, out Tensor tensor)
    {
        if (View is not null)
        {
            return View.TryOutput(index, shape, out tensor);
        }
        tensor = default;
        nuint count = 0;
        StatusBoundary.ThrowIfError(Api, Api.KernelContextGetOutputCount(Handle, &count));
        if ((nuint)index >= count)
        {
            return false;
        }
        nint value = 0;
        fixed (long* dims = shape)
        {
            StatusBoundary.ThrowIfError(Api, Api.KernelContextGetOutput(Handle, (nuint)index, dims, (nuint)shape.Length, &value));
        }
        if (value == 0)
        {
            return false;
        }
        int type;
        long* outDims;
        nuint rank;
        void* data;
        StatusBoundary.ThrowIfError(Api, Api.GetTensorElementTypeAndShapeDataReference(value, &type, &outDims, &rank));
        StatusBoundary.ThrowIfError(Api, Api.GetTensorMutableData(value, &data));
        tensor = new Tensor((OrtElementType)type, outDims, (int)rank, data);
        return true;
    }
}
