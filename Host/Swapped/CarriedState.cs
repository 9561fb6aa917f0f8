using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Generation.Backends;

namespace OnnxAttention.Host.Swapped;

/// <summary>
/// The state a model carries from one call to the next, for a batch, on a backend: the one place the pasts and
/// presents of <see cref="StateEntry"/> tensors are bound, for generation (<see cref="Generation.Generator"/>) and for
/// runs in pieces (<see cref="SwappedModelRunner"/>). A fixed-size tensor lives in one buffer bound as both past and
/// present where it may be updated in place, otherwise in two buffers that swap roles each call; its first call reads
/// zeroed host tensors (ORT copies them where the state lives), so buffers never need a fill. A growing tensor (a KV
/// cache) starts at length 0 and each call's present, which ORT allocates in the state memory, becomes the next past.
/// </summary>
public sealed class CarriedState : IDisposable
{
    private readonly ISessionBackend _backend;
    private readonly IReadOnlyList<StateEntry> _state;
    private readonly int _batch;
    private readonly IBackendTensor[][] _buffers;  // fixed-size: [tensor][buffer 0/1], the same tensor twice when in place
    private readonly IBackendTensor?[] _cache;     // growing: the latest present (at first an empty host tensor)
    private readonly List<IBackendTensor> _owned = [];
    private readonly IBackendTensor?[] _zeros;     // the first call's pasts, made when first bound, released after it
    private readonly IBackendTensor?[] _rowZeros;  // the same for a row run alone (batch 1)

    /// <param name="inPlace">Whether a fixed-size tensor may live in one buffer (both past and present).</param>
    public CarriedState(ISessionBackend backend, IReadOnlyList<StateEntry> state, int batch, Func<StateEntry, bool> inPlace)
    {
        _backend = backend;
        _state = state;
        _batch = batch;
        _buffers = new IBackendTensor[state.Count][];
        _cache = new IBackendTensor?[state.Count];
        _zeros = new IBackendTensor?[state.Count];
        _rowZeros = new IBackendTensor?[state.Count];
        try
        {
            for (var i = 0; i < state.Count; i++)
            {
                var s = state[i];
                var shape = s.ShapeFor(batch);
                _ = s.ElementsFor(batch); // refuses a batch whose state would not fit one buffer
                if (s.Grows)
                {
                    // Length 0 on the growing axis: the start of the sequence.
                    _cache[i] = backend.HostZeros(s.ElementType, shape);
                    _buffers[i] = [];
                    continue;
                }
                var first = Own(backend.AllocateState(s.ElementType, shape));
                _buffers[i] = [first, inPlace(s) ? first : Own(backend.AllocateState(s.ElementType, shape))];
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Which buffer holds the latest fixed-size state; -1 before the first call (the pasts are zeros).</summary>
    public int Current { get; private set; } = -1;

    public bool Grows => _state.Any(s => s.Grows);

    /// <summary>
    /// Binds every tensor's past (the latest state, zeros before the first call) and present (the other buffer, or
    /// memory ORT allocates for a growing tensor). Bind state before any other output: <see cref="Advance"/> reads
    /// the presents first among the binding's outputs.
    /// </summary>
    public void Bind(IBackendBinding binding) => Bind(binding, Current);

    /// <summary>
    /// Binds fixed-size buffer <paramref name="past"/> as every past and the other as every present: a binding made
    /// once and run whenever that buffer holds the latest state (decode steps; no growing state).
    /// </summary>
    public void BindFixed(IBackendBinding binding, int past)
    {
        if (Grows) throw new InvalidOperationException("a growing state is bound anew for each call");
        for (var i = 0; i < _state.Count; i++)
        {
            binding.Input(_state[i].Past, _buffers[i][past]);
            binding.Output(_state[i].Present, _buffers[i][1 - past]);
        }
    }

    private void Bind(IBackendBinding binding, int past)
    {
        for (var i = 0; i < _state.Count; i++)
        {
            var s = _state[i];
            if (s.Grows)
            {
                binding.Input(s.Past, _cache[i]!);
                binding.OutputInStateMemory(s.Present);
                continue;
            }
            binding.Input(s.Past, past < 0 ? Zeros(i, _batch) : _buffers[i][past]);
            binding.Output(s.Present, _buffers[i][past < 0 ? 0 : 1 - past]);
        }
    }

    /// <summary>
    /// After a run of a binding bound by <see cref="Bind(IBackendBinding)"/>: the written buffers hold the latest
    /// state, ORT's presents become the pasts. Returns the outputs bound after the state, which the caller disposes.
    /// </summary>
    public IBackendTensor[] Advance(IBackendBinding binding)
    {
        // Outputs come back in the order they were bound: one present per state tensor first.
        var outputs = binding.TakeOutputs();
        for (var i = 0; i < Math.Min(outputs.Length, _state.Count); i++)
        {
            if (_cache[i] is { } previous)
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
        Flip();
        return outputs.Length > _state.Count ? outputs[_state.Count..] : [];
    }

    /// <summary>After a run of a binding bound by <see cref="BindFixed"/> (or a run that wrote the buffer <see cref="Bind(IBackendBinding)"/> named).</summary>
    public void Flip()
    {
        if (Current < 0) Release(_zeros);
        Current = Current < 0 ? 0 : 1 - Current;
    }

    /// <summary>
    /// Row <paramref name="row"/> of both buffers of each fixed-size tensor, as views of batch 1 (one view twice for a
    /// tensor updated in place), for a row run alone; the caller disposes the views.
    /// </summary>
    public IBackendTensor[][] RowViews(int row, List<IBackendTensor> views)
    {
        return _state.Select((s, i) =>
        {
            long[] shape = [1, .. s.TailShape];
            var zero = _backend.Row(_buffers[i][0], row, shape);
            views.Add(zero);
            if (ReferenceEquals(_buffers[i][1], _buffers[i][0])) return new[] { zero, zero };
            var one = _backend.Row(_buffers[i][1], row, shape);
            views.Add(one);
            return new[] { zero, one };
        }).ToArray();
    }

    /// <summary>Binds a row run alone (see <see cref="RowViews"/>): past buffer <paramref name="past"/> (-1: zeros), present <paramref name="written"/>.</summary>
    public void BindRow(IBackendBinding binding, IBackendTensor[][] rowViews, int past, int written)
    {
        for (var i = 0; i < _state.Count; i++)
        {
            binding.Input(_state[i].Past, past < 0 ? Zeros(i, 1) : rowViews[i][past]);
            binding.Output(_state[i].Present, rowViews[i][written]);
        }
    }

    /// <summary>Every row ran alone and left its state in buffer 0, where a batched call would have.</summary>
    public void RowsDone()
    {
        Release(_rowZeros);
        Current = 0;
    }

    /// <summary>Zeroed host pasts of <paramref name="rows"/> rows (the batch, or 1 for a row run alone).</summary>
    private IBackendTensor Zeros(int i, int rows)
    {
        var zeros = rows == _batch ? _zeros : _rowZeros;
        return zeros[i] ??= _backend.HostZeros(_state[i].ElementType, [rows, .. _state[i].TailShape]);
    }

    private static void Release(IBackendTensor?[] tensors)
    {
        for (var i = 0; i < tensors.Length; i++)
        {
            tensors[i]?.Dispose();
            tensors[i] = null;
        }
    }

    private T Own<T>(T value) where T : IBackendTensor
    {
        _owned.Add(value);
        return value;
    }

    public void Dispose()
    {
        Release(_cache);
        Release(_zeros);
        Release(_rowZeros);
        foreach (var v in _owned) v.Dispose();
        _owned.Clear();
    }
}
