using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using NUnit.Framework;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Operators.Cuda.Ops;
using OnnxAttention.Operators.Cuda.Registration;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;
using OnnxAttention.Tests.Native;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Cuda;

/// <summary>
/// The CUDA variants (their own assembly and registry) next to the CPU operators: same schemas but for the execution
/// provider, seen by ORT through the native struct, absent from the CPU registry, and CPU sessions untouched by them.
/// </summary>
[TestFixture]
public class CudaRegistrationTests
{
    private static IEnumerable<CudaAttentionOperator> CudaVariants => CudaOperatorRegistry.Variants;

    [Test]
    public void EveryCpuOperatorHasExactlyOneCudaTwinWithTheSameSchema()
    {
        var cpu = OperatorRegistry.Operators.Where(o => o.Schema.RunsOnCpu).ToList();
        Assert.That(cpu.Select(o => o.Schema.Name).Distinct(), Is.EquivalentTo(new[]
            { "LinearAttention", "WindowAttention", "SummaryAttention", "HybridAttention", "SegmentAttention" }));
        Assert.That(CudaVariants.Count(), Is.EqualTo(cpu.Count));
        foreach (var op in cpu)
        {
            var twin = CudaVariants.Single(c => c.Schema.Name == op.Schema.Name && c.Schema.Inputs[0].ElementType == op.Schema.Inputs[0].ElementType);
            var (a, b) = (op.Schema, twin.Schema);
            var what = $"{a.Name} {a.Inputs[0].ElementType}";
            Assert.That(b.ExecutionProvider, Is.EqualTo("CUDAExecutionProvider"), what);
            Assert.That(b.RunsOnCpu, Is.False, what);
            Assert.That(b.Domain, Is.EqualTo(a.Domain), what);
            Assert.That(b.Inputs, Is.EqualTo(a.Inputs), what);
            Assert.That(b.Outputs, Is.EqualTo(a.Outputs), what);
            Assert.That(b.Attributes, Is.EqualTo(a.Attributes), what);
            Assert.That(op.GetType(), Is.EqualTo(twin.CpuVariant.GetType()), what);
        }
    }

    [Test]
    public void TheCpuRegistryHoldsOnlyCpuOperatorsAndTheCudaRegistryAddsTheVariantsInTheSameDomain()
    {
        Assert.That(OperatorRegistry.Operators.Where(o => !o.Schema.RunsOnCpu || o is CudaAttentionOperator), Is.Empty);
        Assert.That(typeof(OperatorRegistry).Assembly.GetTypes().Where(t => t.Namespace?.Contains("Cuda", StringComparison.Ordinal) == true), Is.Empty,
            "the CPU operator assembly carries no CUDA code");
        Assert.That(CudaOperatorRegistry.Operators.Take(OperatorRegistry.Operators.Count), Is.EqualTo(OperatorRegistry.Operators));
        Assert.That(CudaOperatorRegistry.Operators.Skip(OperatorRegistry.Operators.Count), Is.EqualTo(CudaVariants));
        Assert.That(CudaOperatorRegistry.Operators.Select(o => o.Schema.Domain).Distinct(), Is.EqualTo(new[] { OperatorRegistry.Domain }));
    }

    [Test]
    public void TheCudaVariantsTakeFloat32Float16AndBFloat16ActivationsWithFloat32State()
    {
        Assert.That(CudaVariants.Select(o => (o.Schema.Name, o.Activation)).Distinct().Count(), Is.EqualTo(15), "5 operators x 3 types");
        foreach (var op in CudaVariants)
        {
            Assert.That(op.Schema.Inputs[0].ElementType, Is.AnyOf(OrtElementType.Float, OrtElementType.Float16, OrtElementType.BFloat16));
            Assert.That(op.Activation, Is.EqualTo(op.Schema.Inputs[0].ElementType switch
            {
                OrtElementType.Float => CudaActivation.Float32,
                OrtElementType.Float16 => CudaActivation.Float16,
                _ => CudaActivation.BFloat16,
            }), $"{op.Schema.Name}: the kernels are compiled for the schema's activation type");
            Assert.That(op.Schema.Inputs.Concat(op.Schema.Outputs)
                    .Where(t => t.Name.StartsWith("past_", StringComparison.Ordinal) || t.Name.StartsWith("present_", StringComparison.Ordinal))
                    .Select(t => t.ElementType),
                Is.All.AnyOf(OrtElementType.Float, OrtElementType.Int64), $"{op.Schema.Name}: state tensors");
        }
    }

    [Test]
    public unsafe void OrtIsToldTheExecutionProviderThroughTheNativeStruct()
    {
        var cuda = CudaVariants.First();
        var cpu = cuda.CpuVariant;
        // The blocks are never freed (as at registration): two small leaks per test run.
        var cudaBlock = NativeCustomOp.Create(cuda);
        var cpuBlock = NativeCustomOp.Create(cpu);
        var cudaProvider = ((OrtCustomOpStruct*)cudaBlock)->GetExecutionProviderType(cudaBlock);
        var cpuProvider = ((OrtCustomOpStruct*)cpuBlock)->GetExecutionProviderType(cpuBlock);
        Assert.That(Marshal.PtrToStringUTF8((nint)cudaProvider), Is.EqualTo("CUDAExecutionProvider"));
        Assert.That((nint)cpuProvider, Is.EqualTo((nint)0), "NULL means the CPU execution provider");
        Assert.That(Marshal.PtrToStringUTF8((nint)((OrtCustomOpStruct*)cudaBlock)->GetName(cudaBlock)), Is.EqualTo(cuda.Schema.Name));
    }

    /// <summary>
    /// ORT hands a CUDA variant its token_mask in host memory (OrtMemTypeCPUInput, -2), so the variant can tell a mask
    /// of all ones (run as no mask) from one with padding (refused); every other input, and every CPU variant's, stays
    /// OrtMemTypeDefault (0).
    /// </summary>
    [Test]
    public unsafe void OnlyTheCudaVariantsTokenMaskIsAskedForInHostMemory()
    {
        foreach (var cuda in CudaVariants)
        {
            var cudaBlock = NativeCustomOp.Create(cuda);
            var cpuBlock = NativeCustomOp.Create(cuda.CpuVariant);
            var inputs = cuda.Schema.Inputs;
            for (var i = 0; i < inputs.Count; i++)
            {
                var onHost = inputs[i].Name == AttentionInputs.TokenMaskName;
                Assert.That(((OrtCustomOpStruct*)cudaBlock)->GetInputMemoryType(cudaBlock, (nuint)i), Is.EqualTo(onHost ? -2 : 0), $"{cuda.Schema.Name} CUDA input {inputs[i].Name}");
                Assert.That(((OrtCustomOpStruct*)cpuBlock)->GetInputMemoryType(cpuBlock, (nuint)i), Is.Zero, $"{cuda.Schema.Name} CPU input {inputs[i].Name}");
            }
            Assert.That(inputs.Count(t => t.Name == AttentionInputs.TokenMaskName), Is.EqualTo(1), cuda.Schema.Name);
        }
    }

    [Test]
    public void ACpuSessionWithEveryOperatorNeverCreatesACudaKernel()
    {
        // Creating a CUDA kernel loads libcuda, which this machine lacks: had ORT placed any node on a CUDA variant,
        // session creation would fail with CudaUnavailableException. Float32, float16 and bfloat16 nodes of every operator.
        var all = AllOperatorsModel.Build();
        Assert.That(all.Missing, Is.Empty);
        Assert.That(all.Covered, Has.Count.EqualTo(15));
        var options = new SessionOptions { IntraOpNumThreads = 1 }.RegisterOnnxAttentionCudaOperators();
        using var cudaOnCpu = new TypedModelRunner(new OwnedSession(new InferenceSession(all.Model.ToByteArray(), options), options));
        var results = cudaOnCpu.Run(all.Inputs, all.Outputs.ToArray());
        using var cpuOnly = new TypedModelRunner(all.Model);
        var expected = cpuOnly.Run(all.Inputs, all.Outputs.ToArray());
        Assert.That(results.Keys, Is.EquivalentTo(all.Outputs));
        foreach (var name in all.Outputs)
        {
            Assert.That(results[name].Shape, Is.EqualTo(expected[name].Shape), name);
            Assert.That(results[name].Data, Is.EqualTo(expected[name].Data), name);
        }
    }
}
