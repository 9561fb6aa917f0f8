using OnnxAttention.Operators.Cuda.Launch;
using OnnxAttention.Operators.Cuda.Specializations;
using OnnxAttention.Operators.LinearAttention;

namespace OnnxAttention.Operators.Cuda.Ops;

/// <summary>Device pointers of one LinearAttention call (0: input absent / output left out).</summary>
public readonly record struct LinearAttentionDevice(
    nint Query, nint Key, nint Value, nint PastState, nint PastNormalizer, nint Decay, nint Beta,
    nint Output, nint PresentState, nint PresentNormalizer);

/// <summary>
/// LinearAttention on CUDA, one launch per call: linear_attention_prefill (chunked, tensor cores for 16-bit
/// activations) for update_rule=linear with more than one token when its dynamic shared memory fits the device's
/// opt-in limit; linear_attention_decode (the recurrence, any seq_len, every rule) otherwise. The state may be
/// updated in place; the normaliser only with one column block, so an aliased past normaliser is copied aside
/// otherwise. NOT RUN ON A GPU YET.
/// </summary>
public static class LinearAttentionCudaLaunches
{
    /// <summary>The specialisation a call runs with: the prefill one, or null for the decode kernel.</summary>
    public static LinearAttentionPrefillSpecialization? PrefillFor(LinearAttentionAttributes a, LinearAttentionShapes s,
        CudaActivation activation, int maxDynamicSharedBytes)
    {
        if (a.UpdateRule != UpdateRule.Linear || s.SequenceLength <= 1)
        {
            return null;
        }
        var spec = new LinearAttentionPrefillSpecialization(s.KeyDim, s.ValueDim, a.GroupSize, a.FeatureMap, a.Normalize, activation);
        return spec.DynamicSharedBytes <= maxDynamicSharedBytes ? spec : null;
    }

    public static LinearAttentionDecodeSpecialization DecodeFor(LinearAttentionAttributes a, LinearAttentionShapes s, CudaActivation activation) =>
        new(s.KeyDim, s.ValueDim, a.GroupSize, a.UpdateRule, a.FeatureMap, a.Normalize, activation,
            gatePerKey: s.Gate != GateLayout.PerHead, betaPerHead: s.Beta != BetaLayout.Shared);

    public static void Run(ICudaLauncher launcher, LinearAttentionAttributes a, LinearAttentionShapes s, CudaActivation activation,
        in LinearAttentionDevice d)
    {
        if (s.Batch == 0)
        {
            return; // every tensor is empty: nothing to launch (a grid of 0 blocks is a launch error)
        }
        var prefill = PrefillFor(a, s, activation, launcher.MaxDynamicSharedBytes);
        var decode = prefill == null ? DecodeFor(a, s, activation) : null;
        KernelSpecialization spec = (KernelSpecialization?)prefill ?? decode!;
        var grid = prefill?.Grid(s.Batch, a.KvHeads) ?? decode!.Grid(s.Batch, a.KvHeads);

        using var scratch = new DeviceScratch(launcher);
        long kvHeadsTotal = (long)s.Batch * a.KvHeads;
        var state = new ChainedState(scratch, d.PastState, d.PresentState, kvHeadsTotal * s.KeyDim * s.ValueDim * 4, 1,
            mayAlias: true, required: false);
        var normalizer = new ChainedState(scratch, d.PastNormalizer, d.PresentNormalizer, kvHeadsTotal * s.KeyDim * 4, 1,
            mayAlias: grid.Y == 1, required: false);

        List<KernelArgument> arguments =
        [
            KernelArgument.Pointer("query", d.Query),
            KernelArgument.Pointer("key", d.Key),
            KernelArgument.Pointer("value", d.Value),
            KernelArgument.Pointer("past_state", state.Source(0)),
            KernelArgument.Pointer("past_normalizer", normalizer.Source(0)),
        ];
        if (decode != null)
        {
            arguments.Add(KernelArgument.Pointer("decay", d.Decay));
            arguments.Add(KernelArgument.Pointer("beta", d.Beta));
        }
        arguments.AddRange(
        [
            KernelArgument.Pointer("output", d.Output),
            KernelArgument.Pointer("present_state", state.Destination(0)),
            KernelArgument.Pointer("present_normalizer", normalizer.Destination(0)),
            KernelArgument.Int("seq_len", s.SequenceLength),
            KernelArgument.Int("kv_heads", a.KvHeads),
            KernelArgument.Float("scale", a.ScaleFor(s.KeyDim)),
            KernelArgument.Float("gamma", a.Decay),
            KernelArgument.Float("epsilon", a.Epsilon),
        ]);
        launcher.Launch(new KernelLaunch(spec, prefill != null ? "linear_attention_prefill" : "linear_attention_decode", grid,
            spec.ThreadsPerBlock, spec.DynamicSharedBytes, arguments));
    }
}
