using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation.Backends;
using OnnxAttention.Host.Swapped;

namespace OnnxAttention.Host.Generation;

/// <summary>
/// Generates tokens for a batch of prompts, shaped like onnxruntime-genai's generator: prefill the prompts, then
/// GenerateNextToken until IsDone. The loop is written once against <see cref="ISessionBackend"/>, so it runs the
/// same on the CPU provider and on CUDA (<see cref="DecoderModel.Target"/>), where the state lives in device memory.
/// Prompts of different lengths run in one of two ways. A model whose rows may be at different positions
/// (<see cref="ModelContract.PositionsPerRow"/>: fixed-size state) prefills one row at a time (batch 1, on that row's
/// view of the state buffers), then decodes the rows together, each at its own position: no row ever sees a pad.
/// A model that keeps its attention mask (<see cref="ModelContract.PaddingInput"/>: the softmax rule's KV cache,
/// whose length is the batch's) is fed the prompts padded to the longest, as its exporter's runtime pads them
/// (<see cref="PaddedRows"/>: before the prompt for Hugging Face exports, after it for onnxruntime-genai's), with
/// the mask, HF's position ids and each row's count of real tokens as its position.
/// Every input and output of a decode step is a tensor created once and bound with IO binding (an attention mask,
/// one column longer each step, is a new view over one buffer); the recurrent state lives in one buffer per tensor
/// bound as both past and present (our operators update it in place), or where that is not safe in two buffers that
/// swap roles each step, so a decode step allocates nothing more and memory does not grow with the number of tokens.
/// The first call of a sequence reads zeroed host tensors as its pasts (ORT copies them where the state lives), so
/// state buffers never need a separate fill. A growing state (the softmax rule's KV cache) cannot live in fixed
/// buffers: ORT allocates each present in the state memory and it becomes the next past.
/// </summary>
public sealed class Generator : IDisposable
{
    private readonly SwappedDecoder _model;
    private readonly ModelContract _info;
    private readonly ISessionBackend _backend;
    private readonly GeneratorParams _params;
    private readonly int _batch;
    private readonly int _vocab;
    private readonly PaddedRows _rows;            // where each row's tokens sit; pads only when the batch is fed padded
    private readonly bool _rowsAlone;             // prompts of different lengths, each prefilled alone
    private readonly Sampler[] _samplers;
    private readonly List<IBackendTensor> _owned = [];
    private readonly CarriedState _state;
    private readonly bool _grows;                 // some state is a KV cache, longer after every call
    private readonly IBackendBinding _binding;    // prefill, and decode steps when some state grows
    private IBackendBinding[]? _stepBindings;     // decode: [p] reads state buffer p and writes buffer 1 - p
    private readonly IHostTensor<long> _stepIds;      // [batch, 1]
    private readonly IHostTensor<float> _stepLogits;  // [batch, 1, vocab]: every row's latest logits
    private readonly IHostTensor<long> _position;     // each row's position offset: [batch] when rows may differ, else a scalar
    private readonly IHostTensor<long>? _stepPositionIds; // [batch, 1], for a model with a position_ids input
    private long[] _maskBuffer = [];                  // the attention mask of a step, [batch, columns], for a model that reads one
    private IHostTensor<long>? _stepMask;             // the latest step's view over _maskBuffer
    private long _columns;                            // columns of the batch run so far (the past length)
    private readonly bool[] _finished;
    private readonly List<int>[] _sequences;
    private bool _prefilled;
    private bool _pendingFeed;   // the last sampled tokens have not been run through the model yet
    private int _generated;

    public Generator(SwappedDecoder model, GeneratorParams parameters, IReadOnlyList<IReadOnlyList<int>> prompts)
    {
        parameters.Validate();
        if (prompts.Count == 0) throw new ArgumentException("at least one prompt is needed");
        if (prompts.Any(p => p.Count == 0)) throw new ArgumentException("a prompt needs at least one token");
        var info = model.Info;
        var mixed = prompts.Select(p => p.Count).Distinct().Count() != 1;
        var grows = info.State.Any(s => s.Grows);
        _rowsAlone = mixed && info.PositionsPerRow && !grows && !(parameters.PadMixedLengths && info.PaddingInput is not null);
        var padded = mixed && !_rowsAlone && info.PaddingInput is not null;
        if (mixed && !_rowsAlone && !padded)
        {
            var lengths = string.Join(", ", prompts.Select(p => p.Count));
            throw new ArgumentException(grows
                ? $"prompts of different lengths ({lengths}) cannot share a batch with the '{info.Rule}' rule: its KV cache has one length " +
                  "for the whole batch, and the model reads no attention mask to pad them with; give prompts of equal length, or one generator per length"
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
        // Rows prefilled alone are decoded as if padded before their prompts: that is the mask a model that
        // reads one is fed for them.
        _rows = new PaddedRows(prompts.Select(p => p.Count).ToArray(), padded && info.PadsOnTheRight);
        _sequences = prompts.Select(p => p.ToList()).ToArray();
        _samplers = Enumerable.Range(0, _batch)
            .Select(i => new Sampler(parameters.SamplingOrGreedy with { Seed = parameters.SamplingOrGreedy.Seed + i }, _vocab)).ToArray();
        _finished = new bool[_batch];
        _grows = grows;
        _backend = model.OpenBackend();
        try
        {
            _state = new CarriedState(_backend, info.State, _batch, s => parameters.StateInPlace && model.InPlaceStates.Contains(s.Past));
            _stepIds = Own(_backend.Host<long>([_batch, 1]));
            _stepLogits = Own(_backend.Host<float>([_batch, 1, _vocab]));
            _position = Own(_backend.Host<long>(info.PositionsPerRow || padded ? [_batch] : []));
            if (info.PositionIdsInput is not null) _stepPositionIds = Own(_backend.Host<long>([_batch, 1]));
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
        if (_rowsAlone)
        {
            PrefillRows(chunk);
        }
        else
        {
            var length = _rows.PromptColumns;
            var logitsBuffer = LogitsBuffer(_batch, Math.Min(chunk, length));
            for (var start = 0; start < length; start += chunk)
            {
                var n = Math.Min(chunk, length - start);
                using var ids = _backend.Host<long>([_batch, n]);
                for (var b = 0; b < _batch; b++)
                {
                    // A pad's id is never attended to; 0 is in every vocabulary.
                    for (var t = 0; t < n; t++) ids.Span[b * n + t] = _rows.PromptIndex(b, start + t) is var i and >= 0 ? _sequences[b][i] : 0;
                }
                using var mask = Mask(_batch, start + n);
                using var positionIds = PositionIds(start, n);
                using var logits = _backend.HostOver(logitsBuffer, [_batch, n, _vocab]);
                SetPosition(start, n);
                Bind(_binding, ids, mask, positionIds, _position, logits, _state.Bind);
                _binding.Run();
                foreach (var output in _state.Advance(_binding)) output.Dispose();
                for (var b = 0; b < _batch; b++)
                {
                    // A row's first new token follows its last prompt token, wherever padding put it.
                    var last = _rows.ColumnOf(b, _sequences[b].Count - 1) - start;
                    if (last < 0 || last >= n) continue;
                    logits.Span.Slice((b * n + last) * _vocab, _vocab).CopyTo(_stepLogits.Span.Slice(b * _vocab, _vocab));
                }
            }
            _columns = length;
        }
        _prefilled = true;
    }

    /// <summary>
    /// One logits buffer for every piece of a prefill. A fresh [rows, piece, vocab] array per piece (64 MB for 1024
    /// tokens of a 16k vocabulary) stayed on the large-object heap until a full collection, so the prefill's peak
    /// memory grew by about one such array per piece, with the prompt's length (bench-generate, window rule in its own
    /// process: +164 MB at 1k, +368 MB at 4k).
    /// </summary>
    private float[] LogitsBuffer(int rows, int piece) => new float[checked((long)rows * piece * _vocab)];

    /// <summary>
    /// Prompts of different lengths (fixed-size state only): each row runs alone (batch 1) on its views of the state
    /// buffers, with its own position, from zeros. Its first call writes the buffer chosen so that its last call
    /// writes buffer 0, where a single batched call would have left every row.
    /// </summary>
    private void PrefillRows(int chunk)
    {
        using var rowPosition = _backend.Host<long>([1]);
        var logitsBuffer = LogitsBuffer(1, Math.Min(chunk, _sequences.Max(r => r.Count)));
        for (var b = 0; b < _batch; b++)
        {
            var views = new List<IBackendTensor>();
            try
            {
                var rowViews = _state.RowViews(b, views);
                var row = _sequences[b];
                var calls = (row.Count - 1) / chunk + 1;
                var current = -1;
                for (var start = 0; start < row.Count; start += chunk)
                {
                    var n = Math.Min(chunk, row.Count - start);
                    using var ids = _backend.Host<long>([1, n]);
                    for (var t = 0; t < n; t++) ids.Span[t] = row[start + t];
                    // Alone, a row has no pads: its mask is ones and its positions count from 0.
                    using var mask = _info.PaddingInput is null ? null : _backend.Host<long>([1, start + n]);
                    mask?.Span.Fill(1);
                    using var positionIds = _info.PositionIdsInput is null ? null : _backend.Host<long>([1, n]);
                    for (var t = 0; t < n && positionIds is not null; t++) positionIds.Span[t] = start + t;
                    using var logits = _backend.HostOver(logitsBuffer, [1, n, _vocab]);
                    rowPosition.Span[0] = start;
                    var past = current;
                    var written = past < 0 ? (calls - 1) % 2 : 1 - past;
                    Bind(_binding, ids, mask, positionIds, rowPosition, logits, binding => _state.BindRow(binding, rowViews, past, written));
                    _binding.Run();
                    current = written;
                    logits.Span.Slice((n - 1) * _vocab, _vocab).CopyTo(_stepLogits.Span.Slice(b * _vocab, _vocab));
                }
            }
            finally
            {
                foreach (var v in views) v.Dispose();
            }
        }
        _state.RowsDone();
        // Decoded together from here, as rows padded before their prompts to the longest.
        _columns = _rows.PromptColumns;
    }

    /// <summary>
    /// The position input of a call covering columns <paramref name="start"/> .. + <paramref name="count"/>: per row,
    /// the position its first real token there has (its count of real tokens before it); one number, the columns
    /// run so far, when every row is at the same position.
    /// </summary>
    private void SetPosition(long start, int count)
    {
        // A scalar position only serves rows of one length, where every row's offset is start.
        var position = _position.Span;
        for (var b = 0; b < position.Length; b++) position[b] = _rows.Offset(b, start, count);
    }

    /// <summary>The attention mask [rows, columns] of a call, for a model that reads one; null otherwise.</summary>
    private IHostTensor<long>? Mask(int rows, long columns)
    {
        if (_info.PaddingInput is null) return null;
        var mask = _backend.Host<long>([rows, columns]);
        _rows.Mask(mask.Span, checked((int)columns));
        return mask;
    }

    /// <summary>Position ids [batch, count] of a call, for a model with a position_ids input; null otherwise.</summary>
    private IHostTensor<long>? PositionIds(long start, int count)
    {
        if (_info.PositionIdsInput is null) return null;
        var positions = _backend.Host<long>([_batch, count]);
        _rows.PositionIds(positions.Span, start, count);
        return positions;
    }

    /// <summary>Samples one token per row from the latest logits, first running the previous tokens if needed.</summary>
    public void GenerateNextToken()
    {
        if (!_prefilled) Prefill();
        if (IsDone) throw new InvalidOperationException("generation is done");
        if (_pendingFeed)
        {
            SetPosition(_columns, 1);
            if (_stepPositionIds is { } positionIds) _rows.PositionIds(positionIds.Span, _columns, 1);
            var mask = StepMask();
            if (_grows)
            {
                Bind(_binding, _stepIds, mask, _stepPositionIds, _position, _stepLogits, _state.Bind);
                _binding.Run();
                foreach (var output in _state.Advance(_binding)) output.Dispose();
            }
            else
            {
                // Both decode bindings are made once; a step only picks the one whose past is the latest state.
                _stepBindings ??= [StepBinding(0), StepBinding(1)];
                var binding = _stepBindings[_state.Current];
                if (mask is not null) binding.Input(_info.PaddingInput!, mask);
                binding.Run();
                _state.Flip();
            }
            _columns++;
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

    /// <summary>
    /// The mask of the step at column _columns, [batch, _columns + 1]: a new view over one buffer (grown by doubling),
    /// the previous step's view released; null for a model that reads no mask.
    /// </summary>
    private IHostTensor<long>? StepMask()
    {
        if (_info.PaddingInput is null) return null;
        var columns = checked((int)_columns + 1);
        var size = checked(_batch * columns);
        if (_maskBuffer.Length < size) _maskBuffer = new long[Math.Max(size, (int)Math.Min(Array.MaxLength, 2L * _maskBuffer.Length))];
        _rows.Mask(_maskBuffer, columns);
        _stepMask?.Dispose();
        _stepMask = _backend.HostOver(_maskBuffer, [_batch, columns]);
        return _stepMask;
    }

    private IBackendBinding StepBinding(int past)
    {
        var binding = _backend.CreateBinding();
        Bind(binding, _stepIds, null, _stepPositionIds, _position, _stepLogits, b => _state.BindFixed(b, past));
        return binding;
    }

    /// <summary>
    /// Binds ids, the attention mask and position ids (where the model reads them; a decode step binds its mask
    /// itself), the position, the state (<paramref name="state"/>: one of <see cref="CarriedState"/>'s bindings), and the logits.
    /// </summary>
    private void Bind(IBackendBinding binding, IBackendTensor ids, IBackendTensor? mask, IBackendTensor? positionIds, IBackendTensor position,
        IBackendTensor logits, Action<IBackendBinding> state)
    {
        binding.Clear();
        binding.Input(_info.IdsInput, ids);
        if (_info.PaddingInput is { } maskInput && mask is not null) binding.Input(maskInput, mask);
        if (_info.PositionIdsInput is { } positionIdsInput && positionIds is not null) binding.Input(positionIdsInput, positionIds);
        if (_info.HasPositionInput) binding.Input(PositionOffset.InputName, position);
        state(binding);
        binding.Output(_info.LogitsOutput, logits);
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
        _stepMask?.Dispose();
        _stepMask = null;
        _state?.Dispose();
        foreach (var v in _owned) v.Dispose();
        _owned.Clear();
        _backend?.Dispose();
    }
}
