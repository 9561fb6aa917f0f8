using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Host.Sessions;

namespace OnnxAttention.Host.Swapped;

/// <summary>
/// Runs a model in pieces along the sequence, carrying its state from one piece to the next: a swapped model's state
/// and position offset as its <see cref="ModelContract"/> declares them (ids [batch, seq] -> logits [batch, seq, vocab]),
/// or any state a caller names (a model's own KV cache). Fixed-size state keeps its shape; a growing state (a KV
/// cache) starts at length 0 (ORT accepts zero-length past_key and past_value) and takes the shape of each call's
/// present output. The <c>logits</c> command and the tests run models in pieces through this; the generation loop
/// (<see cref="Generation.Generator"/>) carries the same contract's state in bound buffers instead, so that a decode step
/// allocates nothing.
/// </summary>
public sealed class SwappedModelRunner : IDisposable
{
    /// <summary>One input cut along the sequence: [batch, seq, width], or [batch, seq] when <paramref name="Width"/> is 0;
    /// float32, float16, bfloat16 or int64 elements.</summary>
    public sealed record SequenceInput(string Name, Array Data, int Width = 0);

    /// <summary>A further input of one piece: (name, data, shape), given the piece's start and length.</summary>
    public delegate IEnumerable<(string Name, Array Data, long[] Shape)> PieceInputs(int start, int count);

    private readonly OwnedSession _session;
    private readonly IReadOnlyList<StateEntry> _state;
    private readonly bool _hasPosition;

    /// <summary>A model swapped by <see cref="AttentionSwapper"/>: its contract says what to carry.</summary>
    /// <param name="target">
    /// The execution provider; on CUDA each call's ids and state are copied in and its logits and state out (an
    /// offline tool; <see cref="Generation.Generator"/> keeps state on the device).
    /// </param>
    public SwappedModelRunner(ModelProto swapped, int intraOpThreads = 0, ExecutionTarget? target = null)
        : this(swapped, ModelContract.Read(swapped), intraOpThreads, target)
    {
    }

    /// <summary>Any model, carrying <paramref name="state"/> (and feeding the position offset when <paramref name="hasPosition"/>).</summary>
    public SwappedModelRunner(ModelProto model, IReadOnlyList<StateEntry> state, bool hasPosition, int intraOpThreads = 0, ExecutionTarget? target = null)
    {
        _state = state;
        _hasPosition = hasPosition;
        _session = SessionFactory.Create(model, intraOpThreads, target ?? ExecutionTarget.Cpu);
    }

    private SwappedModelRunner(ModelProto swapped, ModelContract contract, int intraOpThreads, ExecutionTarget? target)
        : this(swapped, contract.State, contract.HasPositionInput, intraOpThreads, target)
    {
        Contract = contract;
    }

    /// <summary>The swapped model's contract; null for a model run with state named by the caller.</summary>
    public ModelContract? Contract { get; }

    /// <summary>Logits for all positions, feeding <paramref name="chunk"/> tokens per call (1: token by token).</summary>
    /// <param name="mask">[batch, seq] 1 = token, 0 = pad, for a model that takes an attention mask; null = all ones.</param>
    /// <param name="positions">[batch, seq] position ids for a model with a position_ids input; null = Hugging Face generate's from the mask.</param>
    public float[] Logits(long[] ids, int batch, int chunk, IProgress<int>? progress = null, long[]? mask = null, long[]? positions = null) =>
        Output(null, ids, batch, chunk, progress, mask, positions);

    /// <summary>
    /// Float32 output <paramref name="name"/> (the logits when null) of a run over <paramref name="ids"/> as
    /// <see cref="Logits"/> feeds them; with one chunk of the whole sequence it is exactly the tensor the model computes.
    /// </summary>
    public float[] Output(string? name, long[] ids, int batch, int chunk, IProgress<int>? progress = null, long[]? mask = null, long[]? positions = null)
    {
        var contract = Contract ?? throw new InvalidOperationException("logits need a swapped model's contract (its ids input and logits output)");
        if (batch <= 0 || ids.Length % batch != 0) throw new ArgumentException($"{ids.Length} ids do not split into {batch} rows");
        if (chunk <= 0) throw new ArgumentException("chunk must be positive");
        if (mask is not null && mask.Length != ids.Length) throw new ArgumentException($"the attention mask holds {mask.Length} values for {ids.Length} ids");
        if (positions is not null && positions.Length != ids.Length) throw new ArgumentException($"the position ids hold {positions.Length} values for {ids.Length} ids");
        CheckPadding(contract, mask);
        var seq = ids.Length / batch;
        var inputs = new List<SequenceInput> { new(contract.IdsInput, ids) };
        var full = mask ?? Enumerable.Repeat(1L, ids.Length).ToArray();
        if (contract.PositionIdsInput is { } positionIds) inputs.Add(new SequenceInput(positionIds, positions ?? PositionsFromMask(full, batch)));
        // The mask covers the past and the new tokens: [batch, start + n] for the piece at start.
        PieceInputs? perPiece = contract.PaddingInput is { } padding
            ? (start, n) => [(padding, Slice(full, batch, seq, 1, 0, start + n), [batch, start + n])]
            : null;
        return Run(inputs, batch, seq, Chunks(seq, chunk), name ?? contract.LogitsOutput, perPiece, progress);
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

    /// <summary>Pieces of <paramref name="chunk"/> tokens covering <paramref name="seq"/>.</summary>
    public static int[] Chunks(int seq, int chunk) =>
        Enumerable.Range(0, (int)((seq + (long)chunk - 1) / chunk)).Select(i => (int)Math.Min(chunk, seq - (long)i * chunk)).ToArray();

    /// <summary>
    /// Runs <paramref name="inputs"/> in <paramref name="pieces"/> (token counts summing to <paramref name="seq"/>) and returns
    /// the float32 output <paramref name="output"/> ([batch, piece, width] per call) joined into [batch, seq, width].
    /// </summary>
    public float[] Run(IReadOnlyList<SequenceInput> inputs, int batch, int seq, IReadOnlyList<int> pieces, string output,
        PieceInputs? perPiece = null, IProgress<int>? progress = null)
    {
        if (pieces.Sum() != seq || pieces.Any(n => n <= 0)) throw new ArgumentException($"pieces [{string.Join(", ", pieces)}] do not cover {seq} tokens");
        var carried = _state.Select(s => (Data: Zeros(s.ElementType, s.ElementsFor(batch)), Shape: s.ShapeFor(batch))).ToArray();
        float[]? all = null;
        var start = 0;
        foreach (var n in pieces)
        {
            var names = new List<string>();
            var values = new List<OrtValue>();
            try
            {
                foreach (var x in inputs)
                {
                    names.Add(x.Name);
                    values.Add(Value(Slice(x.Data, batch, seq, Math.Max(1, x.Width), start, n), x.Width == 0 ? [batch, n] : [batch, n, x.Width]));
                }
                foreach (var (name, data, shape) in perPiece?.Invoke(start, n) ?? [])
                {
                    names.Add(name);
                    values.Add(Value(data, shape));
                }
                if (_hasPosition)
                {
                    names.Add(PositionOffset.InputName);
                    values.Add(OrtValue.CreateTensorValueFromMemory(new long[] { start }, []));
                }
                for (var i = 0; i < _state.Count; i++)
                {
                    names.Add(_state[i].Past);
                    values.Add(Value(carried[i].Data, carried[i].Shape));
                }
                using var runOptions = new RunOptions();
                using var results = _session.Session.Run(runOptions, names, values, [output, .. _state.Select(s => s.Present)]);
                // 16-bit outputs (a float16 model's logits) are widened to float32.
                var y = ToFloat(results[0]).AsSpan();
                var width = y.Length / (batch * n);
                all ??= new float[checked(batch * seq * width)];
                for (var b = 0; b < batch; b++)
                {
                    y.Slice(b * n * width, n * width).CopyTo(all.AsSpan((b * seq + start) * width, n * width));
                }
                for (var i = 0; i < _state.Count; i++)
                {
                    carried[i] = (Copy(results[i + 1]), results[i + 1].GetTensorTypeAndShape().Shape);
                }
            }
            finally
            {
                foreach (var v in values) v.Dispose();
            }
            start += n;
            progress?.Report(start);
        }
        return all ?? [];
    }

    public void Dispose() => _session.Dispose();

    private static Array Zeros(TensorProto.Types.DataType type, int length) => type switch
    {
        TensorProto.Types.DataType.Float => new float[length],
        TensorProto.Types.DataType.Float16 => new Float16[length],
        TensorProto.Types.DataType.Bfloat16 => new BFloat16[length],
        _ => throw new ArgumentException($"state of element type {type} is not carried"),
    };

    private static Array Slice(Array x, int batch, int seq, int width, int start, int count)
    {
        var piece = Array.CreateInstance(x.GetType().GetElementType()!, batch * count * width);
        for (var b = 0; b < batch; b++)
        {
            Array.Copy(x, (b * seq + start) * width, piece, b * count * width, count * width);
        }
        return piece;
    }

    private static OrtValue Value(Array data, long[] shape) => data switch
    {
        float[] f => OrtValue.CreateTensorValueFromMemory(f, shape),
        long[] l => OrtValue.CreateTensorValueFromMemory(l, shape),
        Float16[] h => OrtValue.CreateTensorValueFromMemory(h, shape),
        BFloat16[] bf => OrtValue.CreateTensorValueFromMemory(bf, shape),
        _ => throw new ArgumentException($"unsupported element type {data.GetType().GetElementType()}"),
    };

    private static float[] ToFloat(OrtValue v) => v.GetTensorTypeAndShape().ElementDataType switch
    {
        TensorElementType.Float16 => v.GetTensorDataAsSpan<Float16>().ToArray().Select(x => x.ToFloat()).ToArray(),
        TensorElementType.BFloat16 => v.GetTensorDataAsSpan<BFloat16>().ToArray().Select(x => x.ToFloat()).ToArray(),
        _ => v.GetTensorDataAsSpan<float>().ToArray(),
    };

    private static Array Copy(OrtValue value) => value.GetTensorTypeAndShape().ElementDataType switch
    {
        TensorElementType.Float => value.GetTensorDataAsSpan<float>().ToArray(),
        TensorElementType.Float16 => value.GetTensorDataAsSpan<Float16>().ToArray(),
        TensorElementType.BFloat16 => value.GetTensorDataAsSpan<BFloat16>().ToArray(),
        var other => throw new InvalidOperationException($"a present of element type {other} is not carried"),
    };
}
