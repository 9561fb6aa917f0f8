using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation;

namespace OnnxAttention.Host.NativeRuntime;

/// <summary>
/// <see cref="Generator"/> on the C-API path: prefill the prompts in one call, then one token per call, with the
/// same sampling (<see cref="Sampler"/>, <see cref="GeneratorParams"/>). Fixed-size state lives in tensors allocated
/// by the session's allocator for its state memory (<see cref="NativeSession.DeviceMemoryInfo"/>: CPU memory on the
/// CPU EP, CUDA device memory on a CUDA EP) and bound with IO binding, one buffer per tensor where our operator
/// updates it in place, else two that swap roles; the decode bindings are made once and reused, so a step allocates
/// nothing. The first call reads zeroed host tensors as its pasts (ORT copies them to the device), so device state
/// never needs a separate fill. A growing state (the softmax rule's KV cache) is allocated by ORT in that memory at
/// each call and becomes the next call's past. Token ids, the position and the logits stay in host memory.
/// On CPU all of this is tested against <see cref="Generator"/>; on CUDA it was NOT RUN (no GPU where it was written).
/// </summary>
public sealed class NativeGenerator : IDisposable
{
    private readonly NativeDecoder _model;
    private readonly NativeSession _session;
    private readonly GeneratorParams _params;
    private readonly int _batch;
    private readonly int _promptLength;
    private readonly Sampler[] _samplers;
    private readonly List<NativeValue> _owned = [];
    private readonly NativeValue?[][] _state;      // fixed-size state: [tensor][buffer 0/1], the same value twice when in place
    private readonly HostTensor<float>?[] _zeros;  // fixed-size state: the pasts of the first call
    private readonly nint[] _cache;                // growing state: the latest present (at first an empty host tensor)
    private readonly bool _grows;
    private readonly NativeIoBinding _binding;     // prefill, and decode steps when some state grows
    private NativeIoBinding[]? _stepBindings;      // decode: [p] reads buffer p and writes buffer 1 - p
    private readonly HostTensor<long> _stepIds;
    private readonly HostTensor<float> _stepLogits;
    private readonly HostTensor<long> _position;
    private readonly float[] _latestLogits;
    private readonly bool[] _finished;
    private readonly List<int>[] _sequences;
    private int _current = -1;   // which state buffer holds the latest state; -1: none yet (zeros)
    private bool _prefilled;
    private bool _pendingFeed;
    private int _generated;

    public NativeGenerator(NativeDecoder model, GeneratorParams parameters, IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        parameters.Validate();
        if (prompts.Count == 0) throw new ArgumentException("at least one prompt is needed");
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("a prompt needs at least one token");
        if (prompts.Select(p => p.Count).Distinct().Count() != 1)
        {
            throw new ArgumentException("prompts in one batch must have the same length (group prompts by length, one generator per group)");
        }
        if (prompts.SelectMany(p => p).FirstOrDefault(t => t < 0 || t >= model.Vocab, -1) is var bad && bad != -1)
        {
            throw new ArgumentException($"token {bad} is outside the vocabulary [0, {model.Vocab})");
        }
        _model = model;
        _session = model.Session;
        _params = parameters;
        _batch = prompts.Count;
        _promptLength = prompts[0].Count;
        _sequences = prompts.Select(p => p.ToList()).ToArray();
        _samplers = Enumerable.Range(0, _batch)
            .Select(i => new Sampler(parameters.SamplingOrGreedy with { Seed = parameters.SamplingOrGreedy.Seed + i }, model.Vocab)).ToArray();
        _finished = new bool[_batch];
        _latestLogits = new float[_batch * model.Vocab];
        try
        {
            var states = model.Info.State;
            _state = new NativeValue?[states.Count][];
            _zeros = new HostTensor<float>?[states.Count];
            _cache = new nint[states.Count];
            for (var i = 0; i < states.Count; i++)
            {
                long[] shape = [_batch, .. states[i].TailShape];
                if (states[i].Grows)
                {
                    _state[i] = [null, null];
                    // Length 0 on the growing axis: the start of the sequence.
                    var empty = Own(_session.Host<float>(shape));
                    _cache[i] = empty.Handle;
                    continue;
                }
                var first = Own(_session.AllocateOnDevice(shape));
                var inPlace = parameters.StateInPlace && model.InPlaceStates.Contains(states[i].Past);
                _state[i] = [first, inPlace ? first : Own(_session.AllocateOnDevice(shape))];
                _zeros[i] = Own(_session.Host<float>(shape));
            }
            _grows = states.Any(s => s.Grows);
            _stepIds = Own(_session.Host<long>([_batch, 1]));
            _stepLogits = Own(_session.Host<float>([_batch, 1, model.Vocab]));
            _position = Own(_session.Host<long>([]));
            _binding = _session.CreateBinding();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Called for each new token: (row, token).</summary>
    public event Action<int, int>? TokenGenerated;

    public int Batch => _batch;

    public int GeneratedTokens => _generated;

    public bool IsDone => _prefilled && (_generated >= _params.MaxNewTokens || _finished.All(f => f));

    public IReadOnlyList<int> Sequence(int row) => _sequences[row];

    /// <summary>A row's latest logits (after the prefill: those its first new token is sampled from).</summary>
    public ReadOnlySpan<float> Logits(int row) => _latestLogits.AsSpan(row * _model.Vocab, _model.Vocab);

    /// <summary>The state tensors' memory ("Cpu", or "Cuda" on a CUDA EP).</summary>
    public string StateMemory => _session.DeviceMemoryName;

    /// <summary>Runs the whole prompts through the model in one call, filling the state.</summary>
    public void Prefill()
    {
        if (_prefilled) throw new InvalidOperationException("the prompts were already prefilled");
        var vocab = _model.Vocab;
        var n = _promptLength;
        using var ids = _session.Host<long>([_batch, n]);
        using var logits = _session.Host<float>([_batch, n, vocab]);
        for (var b = 0; b < _batch; b++)
        {
            for (var t = 0; t < n; t++) ids.Span[b * n + t] = _sequences[b][t];
        }
        Run(_binding, ids, logits);
        for (var b = 0; b < _batch; b++)
        {
            logits.Span.Slice(((b + 1) * n - 1) * vocab, vocab).CopyTo(_latestLogits.AsSpan(b * vocab, vocab));
        }
        _prefilled = true;
    }

    /// <summary>Samples one token per row from the latest logits, first running the previous tokens if needed.</summary>
    public void GenerateNextToken()
    {
        if (!_prefilled) Prefill();
        if (IsDone) throw new InvalidOperationException("generation is done");
        if (_pendingFeed)
        {
            if (_grows)
            {
                Run(_binding, _stepIds, _stepLogits);
            }
            else
            {
                // Both decode bindings are made once; a step only picks the one whose past is the latest state.
                _stepBindings ??= [Bind(_session.CreateBinding(), _stepIds, _stepLogits, 0), Bind(_session.CreateBinding(), _stepIds, _stepLogits, 1)];
                _session.Run(_stepBindings[_current]);
                _current = 1 - _current;
                _position.Span[0]++;
            }
            _stepLogits.Span.CopyTo(_latestLogits);
            _pendingFeed = false;
        }
        var vocab = _model.Vocab;
        for (var b = 0; b < _batch; b++)
        {
            var token = _samplers[b].Next(_latestLogits.AsSpan(b * vocab, vocab));
            _stepIds.Span[b] = token;
            if (_finished[b]) continue;
            _sequences[b].Add(token);
            TokenGenerated?.Invoke(b, token);
            if (_params.StopTokens?.Contains(token) == true) _finished[b] = true;
        }
        _generated++;
        _pendingFeed = true;
    }

    /// <summary>One call from the latest state (or zeros), binding afresh: the prefill, and every step when state grows.</summary>
    private void Run(NativeIoBinding binding, HostTensor<long> ids, HostTensor<float> logits)
    {
        Bind(binding, ids, logits, _current);
        _session.Run(binding);
        if (_grows) TakeCache(binding);
        _current = _current < 0 ? 0 : 1 - _current;
        _position.Span[0] += ids.Length / _batch;
    }

    /// <summary>Binds ids, position, state and logits; <paramref name="past"/> -1 reads zeros and writes buffer 0.</summary>
    private NativeIoBinding Bind(NativeIoBinding binding, HostTensor<long> ids, HostTensor<float> logits, int past)
    {
        var info = _model.Info;
        binding.Clear();
        binding.Input(info.IdsInput, ids.Handle);
        if (info.HasPositionInput) binding.Input(PositionOffset.InputName, _position.Handle);
        var written = past < 0 ? 0 : 1 - past;
        for (var i = 0; i < info.State.Count; i++)
        {
            if (info.State[i].Grows)
            {
                binding.Input(info.State[i].Past, _cache[i]);
                binding.OutputOnDevice(info.State[i].Present);
            }
            else
            {
                binding.Input(info.State[i].Past, past < 0 ? _zeros[i]!.Handle : _state[i][past]!.Handle);
                binding.Output(info.State[i].Present, _state[i][written]!.Handle);
            }
        }
        binding.Output(info.LogitsOutput, logits.Handle);
        return binding;
    }

    /// <summary>Keeps the presents ORT allocated for growing state as the next call's pasts; releases the rest.</summary>
    private void TakeCache(NativeIoBinding binding)
    {
        var outputs = binding.OutputValues();
        var previous = (nint[])_cache.Clone();
        // Outputs come back in binding order: one present per state tensor, then the logits.
        for (var i = 0; i < outputs.Length; i++)
        {
            if (i < _cache.Length && _model.Info.State[i].Grows)
            {
                _cache[i] = outputs[i];
            }
            else
            {
                _session.Api.ReleaseValue(outputs[i]);
            }
        }
        // The previous presents were this call's pasts (the first call's are owned host tensors).
        for (var i = 0; i < previous.Length; i++)
        {
            if (_model.Info.State[i].Grows && !_owned.Any(v => v.Handle == previous[i])) _session.Api.ReleaseValue(previous[i]);
        }
    }

    private T Own<T>(T value) where T : NativeValue
    {
        _owned.Add(value);
        return value;
    }

    public void Dispose()
    {
        _binding?.Dispose();
        foreach (var b in _stepBindings ?? []) b.Dispose();
        if (_cache is not null && _model is not null)
        {
            for (var i = 0; i < _cache.Length; i++)
            {
                if (_cache[i] != 0 && !_owned.Any(v => v.Handle == _cache[i])) _session.Api.ReleaseValue(_cache[i]);
            }
        }
        foreach (var v in _owned) v.Dispose();
        _owned.Clear();
    }
}
