using System.Runtime.InteropServices;
using System.Text;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Turns a <see cref="CustomOperator"/> into the <c>OrtCustomOp</c> ORT calls back through. The struct is followed
/// in the same native block by a GCHandle to the operator, so every callback finds its managed definition from
/// the <c>OrtCustomOp*</c> ORT hands back. Blocks are never freed: ORT keeps the pointer for as long as any
/// session made from the options lives, and we cannot know when that ends.
/// </summary>
internal static unsafe class NativeCustomOp
{
    private const int InputCharacteristicRequired = 0;
    private const int InputCharacteristicOptional = 1;

    /// <summary>Layout of the native block: the C struct, then our bookkeeping.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct Block
    {
        public OrtCustomOpStruct Op;
        public nint Operator;      // GCHandle of the CustomOperator
        public nint Forms;         // GCHandle of the KernelForms the domain was made with, or 0
        public byte* Name;         // UTF-8, NUL-terminated
        public byte* Provider;     // UTF-8 or null for CPU
    }

    /// <summary>The managed side of a kernel: ORT's handle for it points at a GCHandle of this.</summary>
    private sealed class KernelHolder(OrtApi api, IKernel kernel, string where, KernelForms? forms)
    {
        public readonly OrtApi Api = api;
        public readonly IKernel Kernel = kernel;
        public readonly string Where = where;
        public readonly KernelForms? Forms = forms;
    }

    /// <param name="forms">null in production; a test or benchmark's forced kernel forms otherwise.</param>
    public static nint Create(CustomOperator op, KernelForms? forms = null)
    {
        var block = (Block*)NativeMemory.AllocZeroed((nuint)sizeof(Block));
        block->Operator = GCHandle.ToIntPtr(GCHandle.Alloc(op));
        block->Forms = forms is null ? 0 : GCHandle.ToIntPtr(GCHandle.Alloc(forms));
        block->Name = Utf8(op.Schema.Name);
        block->Provider = op.Schema.RunsOnCpu ? null : Utf8(op.Schema.ExecutionProvider!);

        ref var s = ref block->Op;
        // OrtNative.ApiVersion (24): from 16 on ORT calls the V2 create/compute below, which return statuses; the members
        // added in later versions (shape inference, aliasing, ...) are left null, so ORT keeps its defaults for them.
        s.Version = OrtNative.ApiVersion;
        s.GetName = &GetName;
        s.GetExecutionProviderType = &GetExecutionProviderType;
        s.GetInputType = &GetInputType;
        s.GetInputTypeCount = &GetInputTypeCount;
        s.GetOutputType = &GetOutputType;
        s.GetOutputTypeCount = &GetOutputTypeCount;
        s.KernelDestroy = &KernelDestroy;
        s.GetInputCharacteristic = &GetInputCharacteristic;
        s.GetOutputCharacteristic = &GetOutputCharacteristic;
        s.GetInputMemoryType = &GetInputMemoryType;
        s.CreateKernelV2 = &CreateKernelV2;
        s.KernelComputeV2 = &KernelComputeV2;
        return (nint)block;
    }

    private static byte* Utf8(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s + "\0");
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        return p;
    }

    private static CustomOperator OperatorOf(nint op) =>
        (CustomOperator)GCHandle.FromIntPtr(((Block*)op)->Operator).Target!;

    // Every callback below is wrapped: an exception escaping into ORT would abort the process.

    [UnmanagedCallersOnly]
    private static byte* GetName(nint op) => ((Block*)op)->Name;

    [UnmanagedCallersOnly]
    private static byte* GetExecutionProviderType(nint op) => ((Block*)op)->Provider;

    [UnmanagedCallersOnly]
    private static nuint GetInputTypeCount(nint op)
    {
        try { return (nuint)OperatorOf(op).Schema.Inputs.Count; }
        catch { return 0; }
    }

    [UnmanagedCallersOnly]
    private static nuint GetOutputTypeCount(nint op)
    {
        try { return (nuint)OperatorOf(op).Schema.Outputs.Count; }
        catch { return 0; }
    }

    [UnmanagedCallersOnly]
    private static int GetInputType(nint op, nuint index)
    {
        try { return (int)OperatorOf(op).Schema.Inputs[(int)index].ElementType; }
        catch { return 0; }
    }

    [UnmanagedCallersOnly]
    private static int GetOutputType(nint op, nuint index)
    {
        try { return (int)OperatorOf(op).Schema.Outputs[(int)index].ElementType; }
        catch { return 0; }
    }

    [UnmanagedCallersOnly]
    private static int GetInputCharacteristic(nint op, nuint index)
    {
        try { return OperatorOf(op).Schema.Inputs[(int)index].Optional ? InputCharacteristicOptional : InputCharacteristicRequired; }
        catch { return InputCharacteristicRequired; }
    }

    [UnmanagedCallersOnly]
    private static int GetOutputCharacteristic(nint op, nuint index)
    {
        try { return OperatorOf(op).Schema.Outputs[(int)index].Optional ? InputCharacteristicOptional : InputCharacteristicRequired; }
        catch { return InputCharacteristicRequired; }
    }

    /// <summary>
    /// OrtMemTypeDefault (inputs live on the execution provider's device), except a device variant's token_mask, which
    /// ORT hands over in host memory (OrtMemTypeCPUInput): which rows and tokens are padding decides what is launched.
    /// </summary>
    [UnmanagedCallersOnly]
    private static int GetInputMemoryType(nint op, nuint index)
    {
        const int OrtMemTypeDefault = 0, OrtMemTypeCpuInput = -2;
        try
        {
            var schema = OperatorOf(op).Schema;
            return !schema.RunsOnCpu && schema.Inputs[(int)index].Layout == BatchLayout.TokenMask ? OrtMemTypeCpuInput : OrtMemTypeDefault;
        }
        catch { return OrtMemTypeDefault; }
    }

    [UnmanagedCallersOnly]
    private static nint CreateKernelV2(nint op, nint apiTable, nint info, nint* kernel)
    {
        var api = new OrtApi(apiTable);
        var name = "OnnxAttention";
        try
        {
            var definition = OperatorOf(op);
            name = definition.Schema.Name;
            var kernelInfo = new KernelInfo(api, info);
            var where = $"{definition.Schema.Name} node '{kernelInfo.NodeName}'";
            var created = definition.CreateKernel(kernelInfo);
            var forms = ((Block*)op)->Forms is var f && f != 0 ? (KernelForms)GCHandle.FromIntPtr(f).Target! : null;
            *kernel = GCHandle.ToIntPtr(GCHandle.Alloc(new KernelHolder(api, created, where, forms)));
            return 0;
        }
        catch (Exception e)
        {
            *kernel = 0;
            return StatusBoundary.ToStatus(api, e, name);
        }
    }

    [UnmanagedCallersOnly]
    private static nint KernelComputeV2(nint kernel, nint context)
    {
        KernelHolder? holder = null;
        try
        {
            holder = (KernelHolder)GCHandle.FromIntPtr(kernel).Target!;
            holder.Kernel.Compute(new KernelContext(holder.Api, context, holder.Forms));
            return 0;
        }
        catch (Exception e)
        {
            return StatusBoundary.ToStatus(holder?.Api ?? OperatorRegistry.Api, e, holder?.Where ?? "OnnxAttention");
        }
    }

    [UnmanagedCallersOnly]
    private static void KernelDestroy(nint kernel)
    {
        try
        {
            if (kernel != 0)
            {
                GCHandle.FromIntPtr(kernel).Free();
            }
        }
        catch
        {
            // Nothing sensible to report from a destructor; ORT has no status here.
        }
    }
}
