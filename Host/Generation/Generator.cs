using Microsoft.ML.OnnxRuntime;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// Generates tokens for a batch of prompts, shaped like onnxruntime-genai's generator: prefill the prompts, then
/// GenerateNextToken until IsDone. Prompts of different lengths are prefilled one row at a time (batch 1, on that
/// row's slice of the state buffers) and then decoded together, each row at its own position; that needs a model
/// whose rows may be at different positions (<see cref="SwappedModelInfo.PositionsPerRow"/>: the state-based rules
/// on a model with per-row positions; not the softmax rule, whose KV cache has one length for the batch).
/// Every input and output of a decode step is an OrtValue created once and bound with IO binding; the recurrent state
/// lives in one buffer per tensor bound as both past and present (our operators update it in place), or where that
/// is not safe in two buffers that swap roles each step, so a decode step allocates nothing and memory does not grow
/// with the number of tokens. A growing state (the softmax rule's KV
/// cache) cannot live in fixed buffers: ORT allocates each present and it becomes the next past.
/// </summary>
public sealed class Generator : IDisposable
{
    private readonly DecoderModel _model;
    private readonly GeneratorParams _params;
    private readonly int _batch;
    private readonly int[] _promptLengths;
    private readonly bool _mixedLengths;
    private readonly Sampler[] _samplers;
    private readonly OrtIoBinding _binding;         // for prefill pieces, whose shapes vary
    private OrtIoBinding[]? _stepBindings;           // decode: [0] reads buffer 0 and writes 1, [1] the reverse
    private readonly RunOptions _runOptions = new();
    private readonly List<OrtValue> _owned = [];
    private readonly OrtValue[][] _state; // [state tensor][buffer 0/1]: the same OrtValue twice when updated in place
    private readonly bool _grows;          // some state is a KV cache, longer after every call
    private readonly OrtValue?[] _cache;   // growing state: the latest present (at first empty), null for fixed-size state
    private IDisposableReadOnlyCollection<OrtValue>? _cacheOwner; // the run outputs that hold _cache
    private readonly long[] _stepIds;
    private readonly long[] _position;     // tokens each row has seen: [batch] when the model takes positions per row, else [1]
    private readonly float[][][] _stateData; // [state tensor][buffer 0/1]: the memory under _state
    private readonly float[] _stepLogits;
    private readonly bool[] _finished;
    private readonly List<int>[] _sequences;
    private int _current;        // which state buffer holds the latest state
    private bool _prefilled;
    private bool _pendingFeed;   // the last sampled tokens have not been run through the model yet
    private int _generated;

    public Generator(DecoderModel model, GeneratorParams parameters, IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        parameters.Validate();
        if (prompts.Count == 0) throw new ArgumentException("at least one prompt is needed");
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("a prompt needs at least one token");
        if (prompts.Select(p => p.Count).Distinct().Count() != 1 && !model.Info.PositionsPerRow)
        {
            var lengths = string.Join(", ", prompts.Select(p => p.Count));
            throw new ArgumentException(model.Info.State.Any(s => s.Grows)
                ? $"prompts of different lengths ({lengths}) cannot share a batch with the '{model.Info.Rule}' rule: its KV cache has one length " +
                  "for the whole batch; give prompts of equal length, or one generator per length"
                : $"prompts of different lengths ({lengths}) cannot share a batch: this model reads one position for all rows " +
                  "(it computes positions from the sequence length); give prompts of equal length, or one generator per length");
        }
        if (prompts.SelectMany(p => p).FirstOrDefault(t => t < 0 || t >= model.Vocab, -1) is var bad && bad != -1)
        {
            throw new ArgumentException($"token {bad} is outside the vocabulary [0, {model.Vocab})");
        }
        _model = model;
        _params = parameters;
        _batch = prompts.Count;
        _promptLengths = prompts.Select(p => p.Count).ToArray();
        _mixedLengths = _promptLengths.Distinct().Count() != 1;
        _position = new long[model.Info.PositionsPerRow ? _batch : 1];
        _sequences = prompts.Select(p => p.ToList()).ToArray();
        _samplers = Enumerable.Range(0, _batch).Select(i => new Sampler(parameters.SamplingOrGreedy with { Seed = parameters.SamplingOrGreedy.Seed + i }, model.Vocab)).ToArray();
        _finished = new bool[_batch];
        _stepIds = new long[_batch];
        _stepLogits = new float[_batch * model.Vocab];
        _binding = model.Session.CreateIoBinding();
        _stateData = model.Info.State.Select(s =>
        {
            var first = new float[_batch * s.ElementsPerRow];
            var inPlace = parameters.StateInPlace && model.InPlaceStates.Contains(s.Past);
            return new[] { first, inPlace ? first : new float[_batch * s.ElementsPerRow] };
        }).ToArray();
        _state = model.Info.State.Select((s, i) =>
        {
            var first = Own(_stateData[i][0], [_batch, .. s.TailShape]);
            return new[] { first, ReferenceEquals(_stateData[i][1], _stateData[i][0]) ? first : Own(_stateData[i][1], [_batch, .. s.TailShape]) };
        }).ToArray();
        _grows = model.Info.State.Any(s => s.Grows);
        _cache = model.Info.State.Select((s, i) => s.Grows ? _state[i][0] : null).ToArray();
    }

    /// <summary>Called for each new token: (row, token).</summary>
    public event Action<int, int>? TokenGenerated;

    public int Batch => _batch;

    public int GeneratedTokens => _generated;

    public bool IsDone => _prefilled && (_generated >= _params.MaxNewTokens || _finished.All(f => f));

    public IReadOnlyList<int> Sequence(int row) => _sequences[row];

    /// <summary>A row's latest logits: after the prefill, those its first new token is sampled from; after a step, those that step sampled from.</summary>
    public ReadOnlySpan<float> Logits(int row) => _stepLogits.AsSpan(row * _model.Vocab, _model.Vocab);

    /// <summary>Runs the whole prompts through the model in one call (the prefill; one call per row when their lengths differ), filling the state.</summary>
    public void Prefill() => PrefillInPieces(int.MaxValue);

    /// <summary>
    /// Runs the prompts through the model in pieces of <paramref name="chunk"/> tokens (1: token by token), carrying
    /// the state between calls. With a state-based rule this gives the same logits as <see cref="Prefill"/>.
    /// </summary>
    public void PrefillInPieces(int chunk)
    {
        if (_prefilled) throw new InvalidOperationException("the prompts were already prefilled");
        if (chunk <= 0) throw new ArgumentException("chunk must be positive");
        if (_mixedLengths)
        {
            PrefillRows(chunk);
        }
        else
        {
            var length = _promptLengths[0];
            for (var start = 0; start < length; start += chunk)
            {
                var n = Math.Min(chunk, length - start);
                Feed(_sequences.Select(s => (IReadOnlyList<int>)s.GetRange(start, n)).ToList(), recordTokens: false);
            }
        }
        _prefilled = true;
    }

    /// <summary>
    /// Prompts of different lengths: each row runs alone (batch 1) on its slice of the state buffers, with its own
    /// position. Every row ends in the buffer a single batched call would have written.
    /// </summary>
    private void PrefillRows(int chunk)
    {
        var info = _model.Info;
        var vocab = _model.Vocab;
        var target = 1 - _current;
        var rowPosition = new long[1];
        using var positionValue = OrtValue.CreateTensorValueFromMemory(rowPosition, [1]);
        using var binding = _model.Session.CreateIoBinding();
        for (var b = 0; b < _batch; b++)
        {
            // Slices of this row in both buffers of each state tensor; one view when the tensor is updated in place.
            var slices = new List<OrtValue>();
            try
            {
                var views = info.State.Select((s, i) =>
                {
                    OrtValue Slice(float[] data)
                    {
                        var v = OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, data.AsMemory((int)(b * s.ElementsPerRow), (int)s.ElementsPerRow), [1, .. s.TailShape]);
                        slices.Add(v);
                        return v;
                    }
                    var zero = Slice(_stateData[i][0]);
                    return new[] { zero, ReferenceEquals(_stateData[i][1], _stateData[i][0]) ? zero : Slice(_stateData[i][1]) };
                }).ToArray();
                var current = _current;
                var row = _sequences[b];
                rowPosition[0] = 0;
                for (var start = 0; start < row.Count; start += chunk)
                {
                    var n = Math.Min(chunk, row.Count - start);
                    var ids = row.GetRange(start, n).Select(t => (long)t).ToArray();
                    var logits = new float[n * vocab];
                    using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, [1, n]);
                    using var logitsValue = OrtValue.CreateTensorValueFromMemory(logits, [1, n, vocab]);
                    binding.ClearBoundInputs();
                    binding.ClearBoundOutputs();
                    binding.BindInput(info.IdsInput, idsValue);
                    if (info.HasPositionInput) binding.BindInput(Graphs.Swapping.PositionOffset.InputName, positionValue);
                    for (var i = 0; i < info.State.Count; i++)
                    {
                        binding.BindInput(info.State[i].Past, views[i][current]);
                        binding.BindOutput(info.State[i].Present, views[i][1 - current]);
                    }
                    binding.BindOutput(info.LogitsOutput, logitsValue);
                    _model.Session.RunWithBinding(_runOptions, binding);
                    current = 1 - current;
                    rowPosition[0] += n;
                    logits.AsSpan((n - 1) * vocab, vocab).CopyTo(_stepLogits.AsSpan(b * vocab, vocab));
                }
                if (current != target)
                {
                    // An odd number of pieces left this row's state in the other buffer (only for tensors with two).
                    for (var i = 0; i < info.State.Count; i++)
                    {
                        var size = (int)info.State[i].ElementsPerRow;
                        _stateData[i][current].AsSpan(b * size, size).CopyTo(_stateData[i][target].AsSpan(b * size, size));
                    }
                }
                if (_position.Length == _batch) _position[b] = row.Count;
            }
            finally
            {
                foreach (var v in slices) v.Dispose();
            }
        }
        _current = target;
    }

    /// <summary>Runs equal-length token lists (one per row) through the model from the current state.</summary>
    private void Feed(IReadOnlyList<IReadOnlyList<int>> rows, bool recordTokens)
    {
        var n = rows[0].Count;
        var ids = rows.SelectMany(r => r.Select(t => (long)t)).ToArray();
        var vocab = _model.Vocab;
        var logits = new float[_batch * n * vocab];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, [_batch, n]);
        using var logitsValue = OrtValue.CreateTensorValueFromMemory(logits, [_batch, n, vocab]);
        Run(idsValue, logitsValue);
        for (var b = 0; b < _batch; b++)
        {
            logits.AsSpan(((b + 1) * n - 1) * vocab, vocab).CopyTo(_stepLogits.AsSpan(b * vocab, vocab));
            if (recordTokens) _sequences[b].AddRange(rows[b]);
        }
        Advance(n);
    }

    private void Advance(int tokens)
    {
        for (var i = 0; i < _position.Length; i++) _position[i] += tokens;
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
                Run(StepIds, StepLogits);
            }
            else
            {
                // Both decode bindings are made once; a step only picks the one whose past is the latest state.
                _stepBindings ??= [Bind(0), Bind(1)];
                _model.Session.RunWithBinding(_runOptions, _stepBindings[_current]);
                _current = 1 - _current;
            }
            Advance(1);
            _pendingFeed = false;
        }
        // Latest logits are in _stepLogits (from the prefill or the step above).
        var vocab = _model.Vocab;
        for (var b = 0; b < _batch; b++)
        {
            var token = _samplers[b].Next(_stepLogits.AsSpan(b * vocab, vocab));
            _stepIds[b] = token;
            if (_finished[b]) continue;
            _sequences[b].Add(token);
            TokenGenerated?.Invoke(b, token);
            if (_params.StopTokens?.Contains(token) == true) _finished[b] = true;
        }
        _generated++;
        _pendingFeed = true;
    }

    private OrtValue? _stepIdsValue;
    private OrtValue? _stepLogitsValue;
    private OrtValue? _positionValue;

    private OrtValue StepIds => _stepIdsValue ??= Own(_stepIds, [_batch, 1]);

    private OrtValue StepLogits => _stepLogitsValue ??= Own(_stepLogits, [_batch, 1, _model.Vocab]);

    private OrtValue Position => _positionValue ??= Own(_position, _model.Info.PositionsPerRow ? [_batch] : []);

    private void Run(OrtValue ids, OrtValue logits)
    {
        BindAll(_binding, ids, logits, _current);
        _model.Session.RunWithBinding(_runOptions, _binding);
        _current = 1 - _current;
        if (_grows) TakeCache(_binding);
    }

    /// <summary>Keeps the presents ORT allocated for growing state as the next call's pasts.</summary>
    private void TakeCache(OrtIoBinding binding)
    {
        var outputs = binding.GetOutputValues();
        // Outputs come back in the order BindAll bound them: one present per state tensor, then the logits.
        for (var i = 0; i < _cache.Length; i++)
        {
            if (_cache[i] is not null) _cache[i] = outputs[i];
        }
        // The previous presents were this run's pasts; the run is over, so they can go.
        _cacheOwner?.Dispose();
        _cacheOwner = outputs;
    }

    private OrtIoBinding Bind(int past)
    {
        var binding = _model.Session.CreateIoBinding();
        BindAll(binding, StepIds, StepLogits, past);
        return binding;
    }

    private void BindAll(OrtIoBinding binding, OrtValue ids, OrtValue logits, int past)
    {
        var info = _model.Info;
        binding.ClearBoundInputs();
        binding.ClearBoundOutputs();
        binding.BindInput(info.IdsInput, ids);
        if (info.HasPositionInput) binding.BindInput(Graphs.Swapping.PositionOffset.InputName, Position);
        for (var i = 0; i < info.State.Count; i++)
        {
            if (_cache[i] is { } cache)
            {
                binding.BindInput(info.State[i].Past, cache);
                binding.BindOutputToDevice(info.State[i].Present, OrtMemoryInfo.DefaultInstance);
            }
            else
            {
                binding.BindInput(info.State[i].Past, _state[i][past]);
                binding.BindOutput(info.State[i].Present, _state[i][1 - past]);
            }
        }
        binding.BindOutput(info.LogitsOutput, logits);
    }

    private OrtValue Own<T>(T[] data, long[] shape) where T : unmanaged
    {
        var value = OrtValue.CreateTensorValueFromMemory(data, shape);
        _owned.Add(value);
        return value;
    }

    public void Dispose()
    {
        _binding.Dispose();
        foreach (var b in _stepBindings ?? []) b.Dispose();
        _runOptions.Dispose();
        _cacheOwner?.Dispose();
        foreach (var v in _owned) v.Dispose();
    }
}
