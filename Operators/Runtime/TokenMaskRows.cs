using OnnxAttention.Operators.Interop;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Padding for every attention operator in one place. A call whose <c>token_mask</c> marks pads runs each row on its
/// own through the operator's kernel, with the row's real tokens only: a pad is then no key, no value and no part of
/// any state, and a padded row produces what its real tokens give alone, by construction rather than by each kernel
/// skipping pads its own way. Every input and output is cut by its <see cref="BatchLayout"/>; outputs at pads are 0.
/// Calls without a mask, or whose mask is all ones, go to the kernel unchanged (the mask costs one scan of it).
/// A count state (<see cref="BatchLayout.Counts"/>) then counts real tokens, and with pads its present is [batch].
/// The same code serves the CUDA kernels: row and count cuts are pointer offsets, and the per-token gather, scatter
/// and zeroing go through the call's <see cref="IRowMemory"/> (device copies on the call's stream there), one copy per
/// run of consecutive real tokens.
/// </summary>
internal sealed unsafe class TokenMaskRows : IKernel
{
    /// <summary>Hands out output <paramref name="index"/> for one row, shaped as the kernel asks for that row.</summary>
    public delegate bool OutputSource(int index, ReadOnlySpan<long> shape, out Tensor tensor);

    /// <summary>The memory a padded call's row copies live in (host memory, or device memory on the call's stream).</summary>
    public delegate IRowMemory MemoryOf(in KernelContext context);

    private readonly IKernel _inner;
    private readonly OperatorSchema _schema;
    private readonly int _mask;
    private readonly MemoryOf _memory;

    private TokenMaskRows(IKernel inner, OperatorSchema schema, int mask, MemoryOf memory)
    {
        _inner = inner;
        _schema = schema;
        _mask = mask;
        _memory = memory;
    }

    /// <summary><paramref name="kernel"/> as it is when <paramref name="schema"/> declares no token mask.</summary>
    public static IKernel Wrap(IKernel kernel, OperatorSchema schema) =>
        Wrap(kernel, schema, static (in KernelContext _) => HostRowMemory.Instance);

    /// <summary>As <see cref="Wrap(IKernel, OperatorSchema)"/>, for a kernel whose tensors live in <paramref name="memory"/>'s memory.</summary>
    public static IKernel Wrap(IKernel kernel, OperatorSchema schema, MemoryOf memory)
    {
        var mask = MaskInput(schema);
        return mask < 0 ? kernel : new TokenMaskRows(kernel, schema, mask, memory);
    }

    /// <summary>The index of the schema's token mask input, or -1.</summary>
    public static int MaskInput(OperatorSchema schema)
    {
        for (var i = 0; i < schema.Inputs.Count; i++)
        {
            if (schema.Inputs[i].Layout == BatchLayout.TokenMask)
            {
                return i;
            }
        }
        return -1;
    }

    public void Compute(in KernelContext context)
    {
        if (!context.HasInput(_mask))
        {
            _inner.Compute(context);
            return;
        }
        var query = context.Input(AttentionInputs.Query);
        if (query.Rank != 3)
        {
            _inner.Compute(context); // which names the query's shape
            return;
        }
        long batch = query.Dim(0), sequence = query.Dim(1);
        var mask = TokenMask.Read(context.Input(_mask), batch, sequence);
        if (mask.AllReal)
        {
            _inner.Compute(context);
            return;
        }
        new Rows(this, context, mask, batch, sequence, _memory(context)).Run();
    }

    /// <summary>One padded call: the whole call's outputs, allocated when the first row asks for them, and the rows.</summary>
    private sealed class Rows(TokenMaskRows op, KernelContext context, TokenMask mask, long batch, long sequence, IRowMemory memory)
    {
        private readonly Tensor?[] _whole = new Tensor?[op._schema.Outputs.Count];
        private readonly bool[] _absent = new bool[op._schema.Outputs.Count];
        private long _row;
        private int[] _real = [];
        private Tensor? _rowOutput;
        private RowView? _view;

        public void Run()
        {
            var inputs = context.InputCount;
            for (_row = 0; _row < batch; _row++)
            {
                _real = RealTokens(_row);
                _rowOutput = null;
                using var view = new RowView(inputs, Output, memory);
                _view = view;
                for (var i = 0; i < inputs; i++)
                {
                    if (i != op._mask && context.HasInput(i))
                    {
                        view.Set(i, Cut(view, i, context.Input(i)));
                    }
                }
                op._inner.Compute(new KernelContext(context, view));
                ScatterOutput();
            }
            _view = null;
        }

        private int[] RealTokens(long b)
        {
            var real = new int[mask.RealTokens(b)];
            var n = 0;
            for (var t = 0; t < sequence; t++)
            {
                if (mask.At(b, t) == 1)
                {
                    real[n++] = t;
                }
            }
            return real;
        }

        private Tensor Cut(RowView view, int index, in Tensor t)
        {
            var spec = index < op._schema.Inputs.Count ? op._schema.Inputs[index] : null;
            var name = spec?.Name ?? $"input {index}";
            var size = ElementSize(t.ElementType);
            Span<long> dims = stackalloc long[Math.Max(1, t.Rank)];
            t.Shape.CopyTo(dims);
            switch (spec?.Layout ?? BatchLayout.Whole)
            {
                case BatchLayout.Tokens:
                    if (t.Rank < 2 || t.Dim(0) != batch || t.Dim(1) != sequence)
                    {
                        throw OrtException.InvalidArgument($"{name} {t.ShapeText} must be [batch={batch}, sequence={sequence}, ...] with a token_mask");
                    }
                    var perToken = t.ElementCount / Math.Max(1, batch * sequence) * size;
                    var copy = (byte*)view.Allocate(_real.Length * perToken);
                    var from = (byte*)t.Data + _row * sequence * perToken;
                    foreach (var (start, at, length) in Runs())
                    {
                        memory.Copy(copy + at * perToken, from + start * perToken, length * perToken);
                    }
                    dims[0] = 1;
                    dims[1] = _real.Length;
                    return view.Make(t.ElementType, dims[..t.Rank], copy);
                case BatchLayout.Rows:
                    if (t.Rank < 1 || t.Dim(0) != batch)
                    {
                        throw OrtException.InvalidArgument($"{name} {t.ShapeText} must be [batch={batch}, ...]");
                    }
                    dims[0] = 1;
                    return view.Make(t.ElementType, dims[..t.Rank], (byte*)t.Data + _row * (t.ElementCount / batch) * size);
                case BatchLayout.Counts:
                    if (t.Rank != 1 || (t.Dim(0) != batch && t.Dim(0) != 1))
                    {
                        throw OrtException.InvalidArgument($"{name} {t.ShapeText} must be [batch={batch}] or [1]");
                    }
                    dims[0] = 1;
                    return view.Make(t.ElementType, dims[..1], (byte*)t.Data + (t.Dim(0) == 1 ? 0 : _row) * size);
                default:
                    return t;
            }
        }

        /// <summary>The row's part of output <paramref name="index"/>; the whole output is allocated on the first request.</summary>
        private bool Output(int index, ReadOnlySpan<long> shape, out Tensor tensor)
        {
            tensor = default;
            var layout = index < op._schema.Outputs.Count ? op._schema.Outputs[index].Layout : BatchLayout.Whole;
            if (index < _absent.Length && _absent[index])
            {
                return false;
            }
            if (index >= _whole.Length || shape.Length == 0 || layout == BatchLayout.Whole)
            {
                // Nothing the operators declare; the whole call's output would be ambiguous per row.
                throw OrtException.InvalidArgument($"output {index} cannot be cut into rows for a token_mask");
            }
            if (_whole[index] is null)
            {
                Span<long> full = stackalloc long[shape.Length];
                shape.CopyTo(full);
                full[0] = batch;
                if (layout == BatchLayout.Tokens)
                {
                    full[1] = sequence;
                }
                if (!context.TryOutput(index, layout == BatchLayout.Counts ? full[..1] : full, out var whole))
                {
                    _absent[index] = true;
                    return false;
                }
                if (layout == BatchLayout.Tokens)
                {
                    memory.Zero(whole.Data, whole.ElementCount * ElementSize(whole.ElementType));
                }
                _whole[index] = whole;
            }
            var w = _whole[index]!.Value;
            var size = ElementSize(w.ElementType);
            var view = _view!;
            switch (layout)
            {
                case BatchLayout.Tokens:
                    var perToken = w.ElementCount / Math.Max(1, batch * sequence) * size;
                    tensor = view.Make(w.ElementType, shape, view.Allocate(_real.Length * perToken));
                    _rowOutput = tensor;
                    return true;
                case BatchLayout.Rows:
                    tensor = view.Make(w.ElementType, shape, (byte*)w.Data + _row * (w.ElementCount / batch) * size);
                    return true;
                default:
                    tensor = view.Make(w.ElementType, [1], (byte*)w.Data + _row * size);
                    return true;
            }
        }

        private void ScatterOutput()
        {
            if (_rowOutput is not { } row || _whole[AttentionInputs.Output] is not { } whole)
            {
                return;
            }
            var perToken = whole.ElementCount / Math.Max(1, batch * sequence) * ElementSize(whole.ElementType);
            var to = (byte*)whole.Data + _row * sequence * perToken;
            foreach (var (start, at, length) in Runs())
            {
                memory.Copy(to + start * perToken, (byte*)row.Data + at * perToken, length * perToken);
            }
        }

        /// <summary>
        /// The row's real tokens as runs of consecutive positions: (position in the row, index among its real tokens,
        /// length). Left or right padding is one run, so one copy per row rather than one per token (on a device, each
        /// copy is a call on the stream).
        /// </summary>
        private List<(long Start, long At, long Length)> Runs()
        {
            var runs = new List<(long, long, long)>();
            for (var i = 0; i < _real.Length;)
            {
                var j = i + 1;
                while (j < _real.Length && _real[j] == _real[j - 1] + 1)
                {
                    j++;
                }
                runs.Add((_real[i], i, j - i));
                i = j;
            }
            return runs;
        }
    }

    private static long ElementSize(OrtElementType type) => type switch
    {
        OrtElementType.Float or OrtElementType.Int32 or OrtElementType.UInt32 => 4,
        OrtElementType.Float16 or OrtElementType.BFloat16 or OrtElementType.Int16 or OrtElementType.UInt16 => 2,
        OrtElementType.Int64 or OrtElementType.UInt64 or OrtElementType.Double => 8,
        OrtElementType.UInt8 or OrtElementType.Int8 or OrtElementType.Bool => 1,
        _ => throw OrtException.InvalidArgument($"element type {type} cannot be cut into rows"),
    };
}
