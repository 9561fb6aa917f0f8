using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// What every operator promises for its <c>token_mask</c> (see <see cref="AttentionInputs.Trailing"/>), checked
/// through real sessions: a padded row gives what its real tokens give alone (against the operator run on those
/// tokens alone, and against the double reference), 0 at pads; prefill == split == decode with pads anywhere (left,
/// right, inside, a row that is all pads in a call); an all-ones mask changes nothing; a bad mask is refused by name.
/// Instantiated once per operator (Runtime/TokenMaskTests), and again on each CUDA variant (Cuda/EmulatedTokenMaskTests).
/// </summary>
public abstract class TokenMaskFixture<TAttributes>
{
    protected const int Batch = 4, Seq = 9, KeyDim = 8, ValueDim = 6;

    /// <summary>Row 0 has no pads; row 1 is left padded, row 2 right padded, row 3 has pads inside.</summary>
    private static readonly long[][] MaskRows =
    [
        [1, 1, 1, 1, 1, 1, 1, 1, 1],
        [0, 0, 0, 0, 1, 1, 1, 1, 1],
        [1, 1, 1, 1, 1, 0, 0, 0, 0],
        [1, 0, 1, 1, 0, 0, 1, 0, 1],
    ];

    protected abstract OperatorContract<TAttributes> Contract { get; }

    /// <summary>Attribute settings to run, each with its query and KV head counts.</summary>
    protected abstract IEnumerable<(TAttributes Attributes, int QueryHeads, int KvHeads)> Settings { get; }

    /// <summary>The double reference's output for one row of <paramref name="seq"/> tokens from the empty state;
    /// <paramref name="extra"/> holds the row's <see cref="PerTokenInputs"/>.</summary>
    protected abstract double[] Reference(TAttributes a, int seq, int dk, int dv, float[] query, float[] key, float[] value,
        IReadOnlyDictionary<string, float[]> extra);

    /// <summary>Further per-token inputs a setting needs ([batch, seq, width], seeded uniform in [low, high]).</summary>
    protected virtual IReadOnlyDictionary<string, (float Low, float High, int Width)> PerTokenInputs(TAttributes a, int kvHeads) =>
        new Dictionary<string, (float, float, int)>();

    /// <summary>Further inputs that are weights, not per-token (initializers of the model; e.g. HybridAttention's Hedgehog maps).</summary>
    protected virtual IReadOnlyList<(string Name, float[] Values, long[] Shape)> ConstantInputs(TAttributes a) => [];

    /// <summary>One setting's sessions: with the token_mask input wired, and without it.</summary>
    private sealed record Setting(TAttributes A, int QHeads, int KvHeads, TypedModelRunner Runner, TypedModelRunner Plain, string[] Outputs) : IDisposable
    {
        public void Dispose()
        {
            Runner.Dispose();
            Plain.Dispose();
        }
    }

    private Setting Open(TAttributes a, int qHeads, int kvHeads) => Open(a, qHeads, kvHeads, Session);

    private Setting Open(TAttributes a, int qHeads, int kvHeads, Func<ModelProto, OwnedSession> session) =>
        new(a, qHeads, kvHeads, new TypedModelRunner(session(Model(a, withMask: true))), new TypedModelRunner(session(Model(a, withMask: false))),
            ["output", .. Contract.States.Select(s => s.Present)]);

    /// <summary>
    /// The session every check runs a model in: our CPU operators. Tests/Cuda runs the same checks with each operator's
    /// CUDA variant on the host emulation of its kernels.
    /// </summary>
    protected virtual OwnedSession Session(ModelProto model) => SessionFactory.Create(model, 1);

    /// <summary>
    /// Every setting's padded call (the four mask rows: none, left, right and inside padding) from the empty state, in
    /// <paramref name="session"/>: the output and the presents.
    /// </summary>
    protected List<(TAttributes A, float[] Output, List<TypedTensor> Presents)> PaddedCalls(Func<ModelProto, OwnedSession> session)
    {
        var calls = new List<(TAttributes, float[], List<TypedTensor>)>();
        foreach (var (a, qHeads, kvHeads) in Settings)
        {
            using var s = Open(a, qHeads, kvHeads, session);
            var (y, presents) = Run(s, Tokens.Seeded(Batch, Seq, qHeads, kvHeads, PerTokenInputs(a, kvHeads)), null, MaskRows);
            calls.Add((a, y, presents));
        }
        return calls;
    }

    private ModelProto Model(TAttributes a, bool withMask)
    {
        var c = Contract;
        var slots = c.States.Select((s, i) => new StatefulOpModel.StateSlot(s.Past, s.Present,
            s.IsPosition ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float,
            [(Dim)"batch", .. c.Tail(i, a, KeyDim, ValueDim).Select(d => (Dim)d)])).ToList();
        var extra = PerTokenInputs(a, 0).Keys.ToHashSet();
        var constants = ConstantInputs(a);
        extra.UnionWith(constants.Select(x => x.Name));
        var model = StatefulOpModel.Build($"{c.Name}_token_mask", slots, slots.Count, slots.Count, declareShapes: false, TensorProto.Types.DataType.Float,
            (b, inputs, outputs) =>
            {
                foreach (var name in extra.Except(constants.Select(x => x.Name))) b.InputOfAnyShape(name, TensorProto.Types.DataType.Float);
                foreach (var (name, values, shape) in constants) b.Initializer(Tensors.Float(name, values, shape));
                if (withMask) b.InputOfAnyShape(AttentionInputs.TokenMaskName, TensorProto.Types.DataType.Int64);
                var further = c.FurtherInputs(Operators.Interop.OrtElementType.Float);
                inputs.AddRange(further.Select(f => f.Layout == BatchLayout.TokenMask ? (withMask ? f.Name : "") : extra.Contains(f.Name) ? f.Name : ""));
                while (inputs[^1].Length == 0) inputs.RemoveAt(inputs.Count - 1);
                b.AttentionNode(c, [.. c.AttributeValues(a).Select(v => v.Value)], inputs, outputs);
            });
        return model;
    }

    /// <summary>A call's per-token inputs: query, key, value and the operator's own (<see cref="PerTokenInputs"/>).</summary>
    private sealed record Tokens(float[] Q, float[] K, float[] V, int Batch, int Seq, int QHidden, int KHidden, int VHidden,
        IReadOnlyDictionary<string, (float[] Data, int Width)> Extra)
    {
        public static Tokens Seeded(int batch, int seq, int qHeads, int kvHeads, IReadOnlyDictionary<string, (float Low, float High, int Width)> extra) => new(
            Support.Seeded.Uniform(11, batch * seq * qHeads * KeyDim), Support.Seeded.Uniform(12, batch * seq * kvHeads * KeyDim),
            Support.Seeded.Uniform(13, batch * seq * kvHeads * ValueDim), batch, seq, qHeads * KeyDim, kvHeads * KeyDim, kvHeads * ValueDim,
            extra.Select((e, i) => (e.Key, (Support.Seeded.Uniform(20 + i, batch * seq * e.Value.Width, e.Value.Low, e.Value.High), e.Value.Width)))
                .ToDictionary(e => e.Key, e => e.Item2));

        /// <summary>Tokens [from, to) of every row.</summary>
        public Tokens Columns(int from, int to) => new(Cut(Q, QHidden, from, to), Cut(K, KHidden, from, to), Cut(V, VHidden, from, to),
            Batch, to - from, QHidden, KHidden, VHidden, Extra.ToDictionary(e => e.Key, e => (Cut(e.Value.Data, e.Value.Width, from, to), e.Value.Width)));

        /// <summary>Row <paramref name="b"/>'s tokens at <paramref name="picked"/>, as a batch of one.</summary>
        public Tokens Row(int b, IReadOnlyList<int> picked) => new(Pick(Q, QHidden, b, picked), Pick(K, KHidden, b, picked),
            Pick(V, VHidden, b, picked), 1, picked.Count, QHidden, KHidden, VHidden,
            Extra.ToDictionary(e => e.Key, e => (Pick(e.Value.Data, e.Value.Width, b, picked), e.Value.Width)));

        private float[] Cut(float[] x, int hidden, int from, int to) =>
            Enumerable.Range(0, Batch).SelectMany(b => x.Skip((b * Seq + from) * hidden).Take((to - from) * hidden)).ToArray();

        private float[] Pick(float[] x, int hidden, int b, IReadOnlyList<int> picked) =>
            picked.SelectMany(t => x.Skip((b * Seq + t) * hidden).Take(hidden)).ToArray();
    }

    private List<KeyValuePair<string, TypedTensor>> Inputs(Setting s, Tokens x, IReadOnlyList<TypedTensor>? past, long[][]? mask)
    {
        var c = Contract;
        var inputs = new List<KeyValuePair<string, TypedTensor>>
        {
            new("query", TypedTensor.Of(x.Q, x.Batch, x.Seq, x.QHidden)),
            new("key", TypedTensor.Of(x.K, x.Batch, x.Seq, x.KHidden)),
            new("value", TypedTensor.Of(x.V, x.Batch, x.Seq, x.VHidden)),
        };
        for (var i = 0; i < c.States.Count; i++)
        {
            if (past is not null)
            {
                inputs.Add(new(c.States[i].Past, past[i]));
                continue;
            }
            long[] shape = [x.Batch, .. c.Tail(i, s.A, KeyDim, ValueDim)];
            var n = (int)shape.Aggregate(1L, (p, d) => p * d);
            inputs.Add(new(c.States[i].Past, c.States[i].IsPosition ? TypedTensor.Of(new long[n], shape) : TypedTensor.Of(new float[n], shape)));
        }
        foreach (var (name, (data, width)) in x.Extra)
        {
            inputs.Add(new(name, TypedTensor.Of(data, x.Batch, x.Seq, width)));
        }
        if (mask is not null)
        {
            inputs.Add(new(AttentionInputs.TokenMaskName, TypedTensor.Of(mask.SelectMany(r => r).ToArray(), mask.Length, mask[0].Length)));
        }
        return inputs;
    }

    private (float[] Output, List<TypedTensor> Presents) Run(Setting s, Tokens x, IReadOnlyList<TypedTensor>? past, long[][]? mask)
    {
        var got = (mask is null ? s.Plain : s.Runner).Run(Inputs(s, x, past, mask), s.Outputs);
        return (got["output"].Floats, s.Outputs.Skip(1).Select(o => got[o]).ToList());
    }

    private static long[][] MaskColumns(int from, int to) => MaskRows.Select(r => r[from..to]).ToArray();

    private static int[] Real(int b, int from = 0, int to = Seq) => Enumerable.Range(from, to - from).Where(t => MaskRows[b][t] == 1).ToArray();

    private static float[] RowState(TypedTensor t, int b)
    {
        var row = t.Floats.Length / (int)t.Shape[0];
        return t.Floats[(b * row)..((b + 1) * row)];
    }

    [Test]
    public void APaddedRowGivesWhatItsRealTokensGiveAloneAndZeroAtPads()
    {
        var compared = 0;
        foreach (var (a, qHeads, kvHeads) in Settings)
        {
            using var s = Open(a, qHeads, kvHeads);
            var x = Tokens.Seeded(Batch, Seq, qHeads, kvHeads, PerTokenInputs(a, kvHeads));
            var (y, presents) = Run(s, x, null, MaskRows);
            var yHidden = qHeads * ValueDim;
            for (var b = 0; b < Batch; b++)
            {
                var real = Real(b);
                var alone = x.Row(b, real);
                var want = Reference(a, real.Length, KeyDim, ValueDim, alone.Q, alone.K, alone.V, alone.Extra.ToDictionary(e => e.Key, e => e.Value.Data));
                var got = real.SelectMany(t => y.Skip((b * Seq + t) * yHidden).Take(yHidden)).ToArray();
                TensorAssert.Close(got, want, Tolerance.Float32, $"{a}: row {b} against the reference on its real tokens");
                var pads = Enumerable.Range(0, Seq).Except(real).SelectMany(t => y.Skip((b * Seq + t) * yHidden).Take(yHidden));
                Assert.That(pads.All(v => v == 0f), $"{a}: row {b}'s output at pads is 0");

                // The same operator on the row's real tokens alone, without a mask: the state it leaves must match too.
                var (yAlone, presentsAlone) = Run(s, alone, null, null);
                TensorAssert.Close(got, yAlone, Tolerance.Float32Reordered, $"{a}: row {b} against the operator on its real tokens");
                for (var i = 0; i < presents.Count; i++)
                {
                    var name = Contract.States[i].Present;
                    if (Contract.States[i].IsPosition)
                    {
                        Assert.That(presents[i].Longs[b], Is.EqualTo(real.Length), $"{a}: row {b}'s {name} counts its real tokens");
                        continue;
                    }
                    TensorAssert.Close(RowState(presents[i], b), presentsAlone[i].Floats, Tolerance.Float32Reordered, $"{a}: row {b}'s {name}");
                }
                compared++;
            }
        }
        Assert.That(compared, Is.GreaterThan(0));
    }

    [Test]
    public void PrefillSplitAndDecodeAgreeWithPadsAnywhere()
    {
        foreach (var (a, qHeads, kvHeads) in Settings)
        {
            using var s = Open(a, qHeads, kvHeads);
            var x = Tokens.Seeded(Batch, Seq, qHeads, kvHeads, PerTokenInputs(a, kvHeads));
            var (whole, wholeState) = Run(s, x, null, MaskRows);
            var yHidden = qHeads * ValueDim;

            // Split at 4 (row 1 is all pads in the first piece): the second piece's mask is the whole attention_mask
            // [batch, past + sequence], of which the operator reads the last columns.
            var (first, state) = Run(s, x.Columns(0, 4), null, MaskColumns(0, 4));
            var (second, splitState) = Run(s, x.Columns(4, Seq), state, MaskRows);
            AssertSame(whole, Join(first, 4, second, Seq - 4, yHidden), $"{a}: split at 4");
            AssertStates(wholeState, splitState, $"{a}: split at 4");

            var decoded = new List<float[]>();
            IReadOnlyList<TypedTensor>? carried = null;
            for (var t = 0; t < Seq; t++)
            {
                var (yt, st) = Run(s, x.Columns(t, t + 1), carried, MaskColumns(0, t + 1));
                decoded.Add(yt);
                carried = st;
            }
            var joined = new float[whole.Length];
            for (var t = 0; t < Seq; t++)
            {
                for (var b = 0; b < Batch; b++)
                {
                    Array.Copy(decoded[t], b * yHidden, joined, (b * Seq + t) * yHidden, yHidden);
                }
            }
            AssertSame(whole, joined, $"{a}: token by token");
            AssertStates(wholeState, carried!, $"{a}: token by token");
        }
    }

    [Test]
    public void AnAllOnesMaskChangesNothing()
    {
        foreach (var (a, qHeads, kvHeads) in Settings)
        {
            using var s = Open(a, qHeads, kvHeads);
            var x = Tokens.Seeded(Batch, Seq, qHeads, kvHeads, PerTokenInputs(a, kvHeads));
            var ones = MaskRows.Select(r => r.Select(_ => 1L).ToArray()).ToArray();
            var (masked, maskedState) = Run(s, x, null, ones);
            var (plain, plainState) = Run(s, x, null, null);
            Assert.That(masked, Is.EqualTo(plain), $"{a}: output");
            for (var i = 0; i < plainState.Count; i++)
            {
                Assert.That(maskedState[i].Data, Is.EqualTo(plainState[i].Data), $"{a}: {Contract.States[i].Present}");
            }
        }
    }

    [Test]
    public void ABadMaskIsRefusedByName()
    {
        var (a, qHeads, kvHeads) = Settings.First();
        using var s = Open(a, qHeads, kvHeads);
        var x = Tokens.Seeded(Batch, Seq, qHeads, kvHeads, PerTokenInputs(a, kvHeads));
        long[][] shortMask = MaskColumns(0, Seq - 1);
        long[][] fewerRows = MaskRows[..(Batch - 1)];
        long[][] notBinary = MaskRows.Select(r => r.Select(v => v * 2).ToArray()).ToArray();
        OrtAssert.RunFails(() => Run(s, x, null, shortMask), "token_mask must be [batch, L] int64 with L >= sequence");
        OrtAssert.RunFails(() => Run(s, x, null, fewerRows), "token_mask must be [batch, L]");
        OrtAssert.RunFails(() => Run(s, x, null, notBinary), "it must be 1 (a token) or 0 (padding)");
        var rank1 = Inputs(s, x, null, null);
        rank1.Add(new(AttentionInputs.TokenMaskName, TypedTensor.Of(new long[Batch], Batch)));
        OrtAssert.RunFails(() => s.Runner.Run(rank1, s.Outputs), "token_mask must be [batch, L]");
    }

    private static float[] Join(float[] first, int firstSeq, float[] second, int secondSeq, int hidden)
    {
        var seq = firstSeq + secondSeq;
        var joined = new float[first.Length + second.Length];
        for (var b = 0; b < first.Length / (firstSeq * hidden); b++)
        {
            Array.Copy(first, b * firstSeq * hidden, joined, b * seq * hidden, firstSeq * hidden);
            Array.Copy(second, b * secondSeq * hidden, joined, (b * seq + firstSeq) * hidden, secondSeq * hidden);
        }
        return joined;
    }

    private static void AssertSame(float[] want, float[] got, string what) =>
        TensorAssert.Close(got, want, Tolerance.Float32Reordered, what);

    private void AssertStates(List<TypedTensor> want, IReadOnlyList<TypedTensor> got, string what)
    {
        for (var i = 0; i < want.Count; i++)
        {
            if (want[i].Data is long[] counts) Assert.That(got[i].Longs, Is.EqualTo(counts), $"{what}: {Contract.States[i].Present}");
            else TensorAssert.Close(got[i].Floats, want[i].Floats, Tolerance.Float32Reordered, $"{what}: {Contract.States[i].Present}");
        }
    }
}
