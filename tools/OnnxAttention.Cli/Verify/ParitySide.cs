using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Cli.Verify;

/// <summary>
/// One side of a comparison: a rule's one-node models on one execution target. A call starting a sequence runs the
/// model without past inputs (the operators' "absent past" path); a call continuing one feeds every past state. Inputs
/// are host tensors (ORT copies them to the device when bound); outputs come back to the host, except presents
/// written into state buffers of the target's memory (<see cref="Allocate"/>), which a later call may read as its
/// pasts and overwrite as its presents (state updated in place, as the generator binds it).
/// </summary>
public sealed class ParitySide : IDisposable
{
    private readonly ParityRule _rule;
    private readonly ActivationType _type;
    private readonly OwnedSession _fresh;
    private readonly OwnedSession _continuing;
    private readonly ParityShape _shape;
    private OwnedSession? _masked;
    private readonly OrtMemoryInfo? _deviceMemory;
    private readonly OrtAllocator _stateAllocator;
    private readonly int _threads;

    public ParitySide(ParityRule rule, ParityShape shape, ActivationType type, ExecutionTarget target, int threads)
    {
        _rule = rule;
        _type = type;
        _shape = shape;
        _threads = threads;
        Target = target;
        _fresh = SessionFactory.Create(rule.Build(type, shape, withPast: false), threads, target);
        try
        {
            _continuing = SessionFactory.Create(rule.Build(type, shape, withPast: true), threads, target);
            if (target.IsCuda)
            {
                _deviceMemory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, target.DeviceId, OrtMemType.Default);
                _stateAllocator = new OrtAllocator(_continuing.Session, _deviceMemory);
            }
            else
            {
                _stateAllocator = OrtAllocator.DefaultInstance;
            }
        }
        catch
        {
            _continuing?.Dispose();
            _deviceMemory?.Dispose();
            _fresh.Dispose();
            throw;
        }
    }

    public ExecutionTarget Target { get; }

    /// <summary>Tokens [start, start + count), from no past (null) or from <paramref name="past"/>, presents to the host.</summary>
    public CallResult Run(ParitySequence sequence, int start, int count, IReadOnlyList<HostTensor>? past) =>
        Call(sequence, start, count, past, boundPast: null, presentInto: null, mask: null);

    /// <summary>As <see cref="Run"/> from <paramref name="past"/>, with a token_mask [batch, count] (1 a token, 0 padding).</summary>
    public CallResult RunMasked(ParitySequence sequence, int start, int count, IReadOnlyList<HostTensor> past, long[] mask) =>
        Call(sequence, start, count, past, boundPast: null, presentInto: null, mask);

    /// <summary>
    /// As <see cref="Run"/>, with the pasts read from <paramref name="boundPast"/> (buffers from <see cref="Allocate"/>)
    /// when given, and the presents written into <paramref name="presentInto"/> when given (then the result holds none).
    /// </summary>
    public CallResult RunBound(ParitySequence sequence, int start, int count, IReadOnlyList<HostTensor>? hostPast,
        IReadOnlyList<OrtValue>? boundPast, IReadOnlyList<OrtValue>? presentInto) =>
        Call(sequence, start, count, hostPast, boundPast, presentInto, mask: null);

    /// <summary>State buffers of the target's memory shaped like <paramref name="like"/> (contents undefined).</summary>
    public IReadOnlyList<OrtValue> Allocate(IReadOnlyList<HostTensor> like) =>
        [.. like.Select(t => OrtValue.CreateAllocatedTensorValue(_stateAllocator, t.Data is long[]? TensorElementType.Int64 : TensorElementType.Float, t.Shape))];

    private CallResult Call(ParitySequence sequence, int start, int count, IReadOnlyList<HostTensor>? hostPast,
        IReadOnlyList<OrtValue>? boundPast, IReadOnlyList<OrtValue>? presentInto, long[]? mask)
    {
        var continues = hostPast is not null || boundPast is not null;
        if (mask is not null && !continues) throw new ArgumentException("a masked call continues from a past");
        var session = mask is not null ? Masked().Session : continues ? _continuing.Session : _fresh.Session;
        var states = _rule.States;
        var owned = new List<OrtValue>();
        try
        {
            using var binding = session.CreateIoBinding();
            foreach (var (name, data, shape) in sequence.Slice(start, count))
            {
                var v = _type.Tensor(data, shape);
                owned.Add(v);
                binding.BindInput(name, v);
            }
            for (var i = 0; continues && i < states.Count; i++)
            {
                OrtValue v;
                if (boundPast is not null)
                {
                    v = boundPast[i];
                }
                else
                {
                    var t = hostPast![i];
                    v = t.Data switch
                    {
                        float[] f => OrtValue.CreateTensorValueFromMemory(f, t.Shape),
                        long[] l => OrtValue.CreateTensorValueFromMemory(l, t.Shape),
                        _ => throw new ArgumentException($"state '{states[i].Past}' holds {t.Data.GetType().Name}"),
                    };
                    owned.Add(v);
                }
                binding.BindInput(states[i].Past, v);
            }
            if (mask is not null)
            {
                var m = OrtValue.CreateTensorValueFromMemory(mask, [sequence.Batch, count]);
                owned.Add(m);
                binding.BindInput(AttentionInputs.TokenMaskName, m);
            }
            binding.BindOutputToDevice("output", OrtMemoryInfo.DefaultInstance);
            for (var i = 0; i < states.Count; i++)
            {
                if (presentInto is not null) binding.BindOutput(states[i].Present, presentInto[i]);
                else binding.BindOutputToDevice(states[i].Present, OrtMemoryInfo.DefaultInstance);
            }
            using var runOptions = new RunOptions();
            session.RunWithBinding(runOptions, binding);
            using var results = binding.GetOutputValues();
            var output = ActivationValues.ReadFloats(results[0]);
            var presents = new List<HostTensor>();
            for (var i = 0; presentInto is null && i < states.Count; i++)
            {
                var r = results[1 + i];
                var shape = r.GetTensorTypeAndShape().Shape;
                presents.Add(states[i].IsPosition
                    ? new HostTensor(r.GetTensorDataAsSpan<long>().ToArray(), shape)
                    : new HostTensor(r.GetTensorDataAsSpan<float>().ToArray(), shape));
            }
            return new CallResult(output, sequence.Batch, count, presents);
        }
        finally
        {
            foreach (var v in owned) v.Dispose();
        }
    }

    private OwnedSession Masked() =>
        _masked ??= SessionFactory.Create(_rule.Build(_type, _shape, withPast: true, withMask: true), _threads, Target);

    public void Dispose()
    {
        _masked?.Dispose();
        if (_deviceMemory is not null)
        {
            _stateAllocator.Dispose();
            _deviceMemory.Dispose();
        }
        _continuing.Dispose();
        _fresh.Dispose();
    }
}
