using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Runs work items on ORT's intra-op thread pool (KernelContext_ParallelFor), so our kernels share threads with
/// the rest of the session instead of competing with a second pool. Nothing is allocated unless a work item fails.
/// </summary>
public static unsafe class OrtParallel
{
    private struct Job
    {
        public delegate*<void*, nint, void> Body;
        public void* State;
        public nint Error; // GCHandle of the first exception thrown by a work item, 0 when none.
    }

    /// <summary>Calls <paramref name="body"/>(state, i) for i in [0, total), possibly on several threads.</summary>
    /// <param name="maxBatches">Upper bound on the number of batches ORT splits the range into (0: no limit).</param>
    public static void For(in KernelContext context, nint total, void* state, delegate*<void*, nint, void> body, nint maxBatches = 0)
    {
        if (total <= 0)
        {
            return;
        }
        if (total == 1)
        {
            body(state, 0);
            return;
        }
        var job = new Job { Body = body, State = state };
        // The job lives on this stack frame: ParallelFor returns only after every item ran.
        StatusBoundary.ThrowIfError(context.Api, context.Api.KernelContextParallelFor(
            context.Handle, (delegate* unmanaged<void*, nuint, void>)(delegate* unmanaged[Cdecl]<void*, nuint, void>)&Trampoline, (nuint)total, (nuint)maxBatches, &job));
        if (job.Error != 0)
        {
            var handle = GCHandle.FromIntPtr(job.Error);
            var error = (Exception)handle.Target!;
            handle.Free();
            throw new OrtException(OrtErrorCode.RuntimeException, "a parallel work item failed: " + error.Message);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Trampoline(void* userData, nuint index)
    {
        var job = (Job*)userData;
        if (Volatile.Read(ref job->Error) != 0)
        {
            return;
        }
        try
        {
            job->Body(job->State, (nint)index);
        }
        catch (Exception e)
        {
            var handle = GCHandle.ToIntPtr(GCHandle.Alloc(e));
            if (Interlocked.CompareExchange(ref job->Error, handle, 0) != 0)
            {
                GCHandle.FromIntPtr(handle).Free();
            }
        }
    }
}
