using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation.Backends;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// Generates tokens for a batch of prompts, shaped like onnxruntime-genai's generator: prefill the prompts, then
/// GenerateNextToken until IsDone. The loop is written once against <see cref="ISessionBackend"/>, so it runs the
/// same on the CPU provider and on CUDA (<see cref="DecoderModel.Target"/>), where the state lives in device memory.
/// Prompts of different lengths are prefilled one row at a time (batch 1, on that row's view of the state buffers)
/// and then decoded together, each row at its own position; that needs a model whose rows may be at different
/// positions (<see cref="ModelContract.PositionsPerRow"/>: the state-based rules on a model with per-row
/// positions; not the softmax rule, whose KV cache has one length for the batch).
/// Every input and output of a decode step is a tensor created once and bound with IO binding; the recurrent state
/// lives in one buffer per tensor bound as both past and present (our operators update it in place), or where that
/// is not safe in two buffers that swap roles each step, so a decode step allocates nothing and memory does not grow
/// with the number of tokens. The first call of a sequence reads zeroed host tensors as its pasts (ORT copies them
/// where the state lives), so state buffers never need a separate fill. A growing state (the softmax rule's KV cache)
/// cannot live in fixed buffers: ORT allocates each present in the state memory and it becomes the next past.
/// </summary>
public sealed class Generator : IDisposable
{
    private readonly SwappedDecoder _model;
    private readonly ModelContract _info;
    private readonly ISessionBackend _backend;
    private readonly GeneratorParams _params;
    private readonly int _batch;
    private readonly int _vocab;
    private readonly int[] _promptLengths;
    private readonly bool _mixedLengths;
    private readonly Sampler[] _samplers;
    private readonly List<IBackendTensor> _owned = [];
    private readonly IBackendTensor[][] _state;   // fixed-size state: [tensor][buffer 0/1], the same tensor twice when in place
    private readonly IBackendTensor?[] _cache;    // growing state: the latest present (at first an empty host tensor)
    private readonly bool _grows;                 // some state is a KV cache, longer after every call
    private readonly IBackendBinding _binding;    // prefill, and decode steps when some state grows
    private IBackendBinding[]? _stepBindings;     // decode: [p] reads buffer p and writes buffer 1 - p
    private readonly IHostTensor<long> _stepIds;      // [batch, 1]
    private readonly IHostTensor<float> _stepLogits;  // [batch, 1, vocab]: every row's latest logits
    private readonly IHostTensor<long> _position;     // tokens each row has seen: [batch] when the model takes positions per row, else a scalar
    private readonly bool[] _finished;
    private readonly List<int>[] _sequences;
    private int _current = -1;   // which state buffer holds the latest state; -1: none yet (the pasts are zeros)
    private bool _prefilled;
    private bool _pendingFeed;   // the last sampled tokens have not been run through the model yet
    private int _generated;

    public Generator(SwappedDecoder model, GeneratorParams parameters, IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        parameters.Validate();
        if (prompts.Count == 0) throw new ArgumentException("at least one prompt is needed");
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("a prompt needs at least one token");
        var info = model.Info;
        if (info.PaddingInput is { } mask)
        {
            throw new ArgumentException($"the model swapped with '{info.Rule}' reads an attention mask ('{mask}'), which the generator does not feed yet; " +
                "generate with a state-based rule (window:W, linear-elu, ...), or run it with the logits command");
        }
        if (prompts.Select(p => p.Count).Distinct().Count() != 1 && (!info.PositionsPerRow || info.State.Any(s => s.Grows)))
        {
            var lengths = string.Join(", ", prompts.Select(p => p.Count));
            throw new ArgumentException(info.State.Any(s => s.Grows)
                ? $"prompts of different lengths ({lengths}) cannot share a batch with the '{info.Rule}' rule: its KV cache has one length " +
                  "for the whole batch; give prompts of equal length, or one generator per length"
                : $"prompts of different lengths ({lengths}) cannot share a batch: this model reads one position for all rows " +
                  "(it computes positions from the sequence length); give prompts of equal length, or one generator per length");
        }
        if (prompts.SelectMany(p => p).FirstOrDefault(t => t < 0 || t >= model.Vocab, -1) is var bad && bad != -1)
        {
            throw new ArgumentException($"token {bad} is outside the vocabulary [0, {model.Vocab})");
        }
        _model = model;
        _info = info;
        _params = parameters;
        _batch = prompts.Count;
        _vocab = model.Vocab;
        _promptLengths = prompts.Select(p => p.Count).ToArray();
        _mixedLengths = _promptLengths.Distinct().Count() != 1;
        _sequences = prompts.Select(p => p.ToList()).ToArray();
        _samplers = Enumerable.Range(0, _batch)
            .Select(i => new Sampler(parameters.SamplingOrGreedy with { Seed = parameters.SamplingOrGreedy.Seed + i }, _vocab)).ToArray();
        _finished = new bool[_batch];
        _grows = info.State.Any(s => s.Grows);
        _backend = model.OpenBackend();
        try
        {
            _state = new IBackendTensor[info.State.Count][];
            _cache = new IBackendTensor?[info.State.Count];
            for (var i = 0; i < info.State.Count; i++)
            {
                var s = info.State[i];
                long[] shape = [_batch, .. s.TailShape];
                _ = s.ElementsFor(_batch); // refuses a batch whose state would not fit one buffer
                if (s.Grows)
                {
                    // Length 0 on the growing axis: the start of the sequence.
                    _cache[i] = _backend.Host<float>(shape);
                    _state[i] = [];
                    continue;
                }
                var first = Own(_backend.AllocateState(shape));
                var inPlace = parameters.StateInPlace && model.InPlaceStates.Contains(s.Past);
                _state[i] = [first, inPlace ? first : Own(_backend.AllocateState(shape))];
            }
            _stepIds = Own(_backend.Host<long>([_batch, 1]));
            _stepLogits = Own(_backend.Host<float>([_batch, 1, _vocab]));
            _position = Own(_backend.Host<long>(info.PositionsPerRow ? [_batch] : []));
            _binding = _backend.CreateBinding();
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

    /// <summary>The state tensors' memory ("Cpu", or "Cuda" on a CUDA EP).</summary>
    public string StateMemory => _backend.StateMemory;

    /// <summary>A row's latest logits: after the prefill, those its first new token is sampled from; after a step, those that step sampled from.</summary>
    public ReadOnlySpan<float> Logits(int row) => _stepLogits.Span.Slice(row * _vocab, _vocab);

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
            using var zeros = new Zeros(_backend, _info, _batch);
            var length = _promptLengths[0];
            for (var start = 0; start < length; start += chunk)
            {
                var n = Math.Min(chunk, length - start);
                using var ids = _backend.Host<long>([_batch, n]);
                for (var b = 0; b < _batch; b++)
                {
                    for (var t = 0; t < n; t++) ids.Span[b * n + t] = _sequences[b][start + t];
                }
                using var logits = _backend.Host<float>([_batch, n, _vocab]);
                var past = _current;
                Bind(_binding, ids, _position, logits,
                    i => _cache[i] ?? (past < 0 ? zeros[i] : _state[i][past]),
                    i => _state[i].Length == 0 ? null : _state[i][past < 0 ? 0 : 1 - past]);
                Run(_binding);
                _current = past < 0 ? 0 : 1 - past;
                Advance(n);
                for (var b = 0; b < _batch; b++)
                {
                    logits.Span.Slice(((b + 1) * n - 1) * _vocab, _vocab).CopyTo(_stepLogits.Span.Slice(b * _vocab, _vocab));
                }
            }
        }
        _prefilled = true;
    }

    /// <summary>
    /// Prompts of different lengths (fixed-size state only): each row runs alone (batch 1) on its views of the state
    /// buffers, with its own position, from zeros. Its first call writes the buffer chosen so that its last call
    /// writes buffer 0, where a single batched call would have left every row.
    /// </summary>
    private void PrefillRows(int chunk)
    {
        using var zeros = new Zeros(_backend, _info, 1);
        using var rowPosition = _backend.Host<long>([1]);
        for (var b = 0; b < _batch; b++)
        {
            var views = new List<IBackendTensor>();
            try
            {
                // This row in both buffers of each state tensor; one view when the tensor is updated in place.
                var rowViews = _info.State.Select((s, i) =>
                {
                    long[] shape = [1, .. s.TailShape];
                    var zero = _backend.Row(_state[i][0], b, shape);
                    views.Add(zero);
                    if (ReferenceEquals(_state[i][1], _state[i][0])) return new[] { zero, zero };
                    var one = _backend.Row(_state[i][1], b, shape);
                    views.Add(one);
                    return new[] { zero, one };
                }).ToArray();
                var row = _sequences[b];
                var calls = (row.Count - 1) / chunk + 1;
                var current = -1;
                rowPosition.Span[0] = 0;
                for (var start = 0; start < row.Count; start += chunk)
                {
                    var n = Math.Min(chunk, row.Count - start);
                    using var ids = _backend.Host<long>([1, n]);
                    for (var t = 0; t < n; t++) ids.Span[t] = row[start + t];
                    using var logits = _backend.Host<float>([1, n, _vocab]);
                    var past = current;
                    var written = past < 0 ? (calls - 1) % 2 : 1 - past;
                    Bind(_binding, ids, rowPosition, logits, i => past < 0 ? zeros[i] : rowViews[i][past], i => rowViews[i][written]);
                    _binding.Run();
                    current = written;
                    rowPosition.Span[0] += n;
                    logits.Span.Slice((n - 1) * _vocab, _vocab).CopyTo(_stepLogits.Span.Slice(b * _vocab, _vocab));
                }
                _position.Span[b] = row.Count; // mixed lengths need a position per row (checked when constructed)
            }
            finally
            {
                foreach (var v in views) v.Dispose();
            }
        }
        _current = 0;
    }

    private void Advance(int tokens)
    {
        var position = _position.Span;
        for (var i = 0; i < position.Length; i++) position[i] += tokens;
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
                Bind(_binding, _stepIds, _position, _stepLogits, i => _cache[i] ?? _state[i][_current], i => _state[i].Length == 0 ? null : _state[i][1 - _current]);
                Run(_binding);
            }
            else
            {
                // Both decode bindings are made once; a step only picks the one whose past is the latest state.
                _stepBindings ??= [StepBinding(0), StepBinding(1)];
                _stepBindings[_current].Run();
            }
            _current = 1 - _current;
            Advance(1);
            _pendingFeed = false;
        }
        // Every row's latest logits are in _stepLogits (from the prefill or the step above).
        var ids = _stepIds.Span;
        for (var b = 0; b < _batch; b++)
        {
            var token = _samplers[b].Next(_stepLogits.Span.Slice(b * _vocab, _vocab));
            ids[b] = token;
            if (_finished[b]) continue;
            _sequences[b].Add(token);
            TokenGenerated?.Invoke(b, token);
            if (_params.StopTokens?.Contains(token) == true) _finished[b] = true;
        }
        _generated++;
        _pendingFeed = true;
    }

    private IBackendBinding StepBinding(int past)
    {
        var binding = _backend.CreateBinding();
        Bind(binding, _stepIds, _position, _stepLogits, i => _state[i][past], i => _state[i][1 - past]);
        return binding;
    }

    /// <summary>Binds ids, position, each state tensor's past and present (null: ORT allocates it, for growing state), and the logits.</summary>
    private void Bind(IBackendBinding binding, IBackendTensor ids, IBackendTensor position, IBackendTensor logits,
        Func<int, IBackendTensor> past, Func<int, IBackendTensor?> present)
    {
        binding.Clear();
        binding.Input(_info.IdsInput, ids);
        if (_info.HasPositionInput) binding.Input(PositionOffset.InputName, position);
        for (var i = 0; i < _info.State.Count; i++)
        {
            binding.Input(_info.State[i].Past, past(i));
            if (present(i) is { } written) binding.Output(_info.State[i].Present, written);
            else binding.OutputInStateMemory(_info.State[i].Present);
        }
        binding.Output(_info.LogitsOutput, logits);
    }

    private void Run(IBackendBinding binding)
    {
        binding.Run();
        if (_grows) TakeCache(binding);
    }

    /// <summary>Keeps the presents ORT allocated for growing state as the next call's pasts; releases the rest.</summary>
    private void TakeCache(IBackendBinding binding)
    {
        // Outputs come back in the order Bind bound them: one present per state tensor, then the logits.
        var outputs = binding.TakeOutputs();
        for (var i = 0; i < outputs.Length; i++)
        {
            if (i < _cache.Length && _cache[i] is { } previous)
            {
                // The previous present was this call's past; the call is over, so it can go.
                previous.Dispose();
                _cache[i] = outputs[i];
            }
            else
            {
                outputs[i].Dispose();
            }
        }
    }

    private T Own<T>(T value) where T : IBackendTensor
    {
        _owned.Add(value);
        return value;
    }

    public void Dispose()
    {
        _binding?.Dispose();
        foreach (var b in _stepBindings ?? []) b.Dispose();
        _stepBindings = null;
        for (var i = 0; i < (_cache?.Length ?? 0); i++)
        {
            _cache![i]?.Dispose();
            _cache[i] = null;
        }
        foreach (var v in _owned) v.Dispose();
        _owned.Clear();
        _backend?.Dispose();
    }

    /// <summary>Zeroed host tensors, one per fixed-size state tensor, read as the pasts of a sequence's first call.</summary>
    private sealed class Zeros(ISessionBackend backend, ModelContract info, int rows) : IDisposable
    {
        private readonly IBackendTensor?[] _tensors = new IBackendTensor?[info.State.Count];

        public IBackendTensor this[int i] => _tensors[i] ??= backend.Host<float>([rows, .. info.State[i].TailShape]);

        public void Dispose()
        {
            foreach (var t in _tensors) t?.Dispose();
        }
    }
}
