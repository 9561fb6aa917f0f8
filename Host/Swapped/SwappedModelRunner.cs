using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Host.Swapped;

/// <summary>
/// Runs a model whose attention was swapped (ids [batch, seq] -> logits [batch, seq, vocab]) in pieces of any size,
/// carrying the per-layer state and the position offset from one piece to the next. Fixed-size state keeps its
/// shape; a growing state (the softmax rule's KV cache) starts at length 0 (ORT accepts zero-length past_key and
/// past_value) and takes the shape of each call's present output. State is carried as ORT's own output values, so
/// float16 caches travel as they are. A model that takes padding is fed its attention mask (all ones unless
/// given) and, where it has them, position_ids (given, or Hugging Face generate's cumsum(mask) - 1).
/// </summary>
public sealed class SwappedModelRunner : IDisposable
{
    private readonly OwnedSession _session;
    private readonly ModelContract _info;

    /// <param name="target">
    /// The execution provider; on CUDA each call's ids and state are copied in and its logits and state out (an
    /// offline tool; <see cref="Generation.Generator"/> keeps state on the device).
    /// </param>
    public SwappedModelRunner(ModelProto swapped, int intraOpThreads = 0, ExecutionTarget? target = null)
    {
        _info = ModelContract.Read(swapped);
        _session = SessionFactory.Create(swapped, intraOpThreads, target ?? ExecutionTarget.Cpu);
    }

    /// <summary>The swapped model's inputs, outputs and state, as its metadata records them.</summary>
    public ModelContract Contract => _info;

    /// <summary>Logits for all positions, feeding <paramref name="chunk"/> tokens per call (1: token by token).</summary>
    /// <param name="mask">[batch, seq] 1 = token, 0 = pad; null = all ones.</param>
    /// <param name="positions">[batch, seq] position ids for a model that takes them; null = from the mask.</param>
    public float[] Logits(long[] ids, int batch, int chunk, IProgress<int>? progress = null, long[]? mask = null, long[]? positions = null)
    {
        if (batch <= 0 || ids.Length % batch != 0) throw new ArgumentException($"{ids.Length} ids do not split into {batch} rows");
        if (chunk <= 0) throw new ArgumentException("chunk must be positive");
        var seq = ids.Length / batch;
        if (mask is not null && mask.Length != ids.Length) throw new ArgumentException($"the attention mask holds {mask.Length} values for {ids.Length} ids");
        if (positions is not null && positions.Length != ids.Length) throw new ArgumentException($"the position ids hold {positions.Length} values for {ids.Length} ids");
        CheckPadding(_info, mask);
        mask ??= Enumerable.Repeat(1L, ids.Length).ToArray();
        if (_info.PositionIdsInput is not null) positions ??= PositionsFromMask(mask, batch);

        var state = _info.State.Select(s => Initial(s, batch)).ToList();
        IDisposableReadOnlyCollection<OrtValue>? held = null;
        float[]? all = null;
        try
        {
            for (var start = 0; start < seq; start += chunk)
            {
                var n = Math.Min(chunk, seq - start);
                var names = new List<string> { _info.IdsInput };
                var owned = new List<OrtValue> { OrtValue.CreateTensorValueFromMemory(Columns(ids, batch, seq, start, n), [batch, n]) };
                if (_info.HasPositionInput)
                {
                    names.Add(PositionOffset.InputName);
                    owned.Add(OrtValue.CreateTensorValueFromMemory(new long[] { start }, []));
                }
                if (_info.PaddingInput is { } padding)
                {
                    names.Add(padding);
                    owned.Add(OrtValue.CreateTensorValueFromMemory(Columns(mask, batch, seq, 0, start + n), [batch, start + n]));
                }
                if (_info.PositionIdsInput is { } positionIds)
                {
                    names.Add(positionIds);
                    owned.Add(OrtValue.CreateTensorValueFromMemory(Columns(positions!, batch, seq, start, n), [batch, n]));
                }
                names.AddRange(_info.State.Select(s => s.Past));
                try
                {
                    using var runOptions = new RunOptions();
                    var results = _session.Session.Run(runOptions, names, [.. owned, .. state], [_info.LogitsOutput, .. _info.State.Select(s => s.Present)]);
                    var logits = ToFloat(results[0]);
                    var vocab = logits.Length / (batch * n);
                    all ??= new float[batch * seq * vocab];
                    for (var b = 0; b < batch; b++)
                    {
                        logits.AsSpan(b * n * vocab, n * vocab).CopyTo(all.AsSpan((b * seq + start) * vocab, n * vocab));
                    }
                    // The presents are the next call's pasts: keep this call's results alive until then.
                    var initial = held is null ? state.ToList() : [];
                    for (var i = 0; i < state.Count; i++) state[i] = results[i + 1];
                    held?.Dispose();
                    foreach (var v in initial) v.Dispose();
                    held = results;
                }
                finally
                {
                    foreach (var v in owned) v.Dispose();
                }
                progress?.Report(start + n);
            }
        }
        finally
        {
            if (held is null)
            {
                foreach (var s in state) s.Dispose();
            }
            else
            {
                held.Dispose();
            }
        }
        return all ?? [];
    }

    /// <summary>Refuses a mask with pads for a model that takes no attention mask (it would attend to the pads).</summary>
    public static void CheckPadding(ModelContract contract, long[]? mask)
    {
        if (mask is not null && contract.PaddingInput is null && mask.Any(m => m == 0))
        {
            throw new ArgumentException($"the attention mask marks padding, but the model swapped with '{contract.Rule}' takes no attention mask");
        }
    }

    /// <summary>Hugging Face generate's positions: cumsum(mask) - 1 along each row, 1 at pads.</summary>
    public static long[] PositionsFromMask(long[] mask, int batch)
    {
        var seq = mask.Length / batch;
        var positions = new long[mask.Length];
        for (var b = 0; b < batch; b++)
        {
            var seen = 0L;
            for (var t = 0; t < seq; t++)
            {
                seen += mask[b * seq + t];
                positions[b * seq + t] = mask[b * seq + t] == 0 ? 1 : seen - 1;
            }
        }
        return positions;
    }

    private static long[] Columns(long[] values, int batch, int seq, int start, int n)
    {
        var piece = new long[batch * n];
        for (var b = 0; b < batch; b++) Array.Copy(values, b * seq + start, piece, b * n, n);
        return piece;
    }

    private static OrtValue Initial(StateEntry s, int batch)
    {
        var shape = s.ShapeFor(batch);
        var count = s.ElementsFor(batch);
        return s.ElementType switch
        {
            TensorProto.Types.DataType.Float16 => OrtValue.CreateTensorValueFromMemory(new Float16[count], shape),
            TensorProto.Types.DataType.Bfloat16 => OrtValue.CreateTensorValueFromMemory(new BFloat16[count], shape),
            _ => OrtValue.CreateTensorValueFromMemory(new float[count], shape),
        };
    }

    private static float[] ToFloat(OrtValue v) => v.GetTensorTypeAndShape().ElementDataType switch
    {
        TensorElementType.Float16 => v.GetTensorDataAsSpan<Float16>().ToArray().Select(x => x.ToFloat()).ToArray(),
        TensorElementType.BFloat16 => v.GetTensorDataAsSpan<BFloat16>().ToArray().Select(x => x.ToFloat()).ToArray(),
        _ => v.GetTensorDataAsSpan<float>().ToArray(),
    };

    public void Dispose() => _session.Dispose();
}
