using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Host.Swapped;

/// <summary>
/// Runs a model whose attention was swapped (ids [batch, seq] -> logits [batch, seq, vocab]) in pieces of any size,
/// carrying the per-layer state and the position offset from one piece to the next. Fixed-size state keeps its
/// shape; a growing state (the softmax rule's KV cache) starts at length 0 (ORT accepts zero-length past_key and
/// past_value) and takes the shape of each call's present output.
/// </summary>
public sealed class SwappedModelRunner : IDisposable
{
    private readonly OwnedSession _session;
    private readonly IReadOnlyList<StateEntry> _state;
    private readonly string _idsInput;
    private readonly string _logitsOutput;
    private readonly bool _hasPosition;

    public SwappedModelRunner(ModelProto swapped, int intraOpThreads = 0)
    {
        var info = ModelContract.Read(swapped);
        (_idsInput, _logitsOutput, _state, _hasPosition) = (info.IdsInput, info.LogitsOutput, info.State, info.HasPositionInput);
        _session = SessionFactory.Create(swapped, intraOpThreads);
    }

    /// <summary>Logits for all positions, feeding <paramref name="chunk"/> tokens per call (1: token by token).</summary>
    public float[] Logits(long[] ids, int batch, int chunk, IProgress<int>? progress = null)
    {
        if (batch <= 0 || ids.Length % batch != 0) throw new ArgumentException($"{ids.Length} ids do not split into {batch} rows");
        if (chunk <= 0) throw new ArgumentException("chunk must be positive");
        var seq = ids.Length / batch;
        var state = _state.Select(s => new float[s.ElementsFor(batch)]).ToList();
        var shapes = _state.Select(s => (long[])[batch, .. s.TailShape]).ToList();
        float[]? all = null;
        var vocab = 0;
        for (var start = 0; start < seq; start += chunk)
        {
            var n = Math.Min(chunk, seq - start);
            var piece = new long[batch * n];
            for (var b = 0; b < batch; b++) Array.Copy(ids, b * seq + start, piece, b * n, n);

            var names = new List<string> { _idsInput };
            var values = new List<OrtValue> { OrtValue.CreateTensorValueFromMemory(piece, [batch, n]) };
            if (_hasPosition)
            {
                names.Add(PositionOffset.InputName);
                values.Add(OrtValue.CreateTensorValueFromMemory(new long[] { start }, []));
            }
            for (var i = 0; i < _state.Count; i++)
            {
                names.Add(_state[i].Past);
                values.Add(OrtValue.CreateTensorValueFromMemory(state[i], shapes[i]));
            }
            try
            {
                using var runOptions = new RunOptions();
                using var results = _session.Session.Run(runOptions, names, values, [_logitsOutput, .. _state.Select(s => s.Present)]);
                var logits = results[0].GetTensorDataAsSpan<float>();
                vocab = logits.Length / (batch * n);
                all ??= new float[batch * seq * vocab];
                for (var b = 0; b < batch; b++)
                {
                    logits.Slice(b * n * vocab, n * vocab).CopyTo(all.AsSpan((b * seq + start) * vocab, n * vocab));
                }
                for (var i = 0; i < _state.Count; i++)
                {
                    state[i] = results[i + 1].GetTensorDataAsSpan<float>().ToArray();
                    shapes[i] = results[i + 1].GetTensorTypeAndShape().Shape;
                }
            }
            finally
            {
                foreach (var v in values) v.Dispose();
            }
            progress?.Report(start + n);
        }
        return all ?? [];
    }

    public void Dispose() => _session.Dispose();
}
