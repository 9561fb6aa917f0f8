using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Operators.Runtime;

namespace OnnxAttention.Tests.Support;

/// <summary>
/// What every operator promises through its <see cref="OperatorContract{TAttributes}"/>, checked through a real
/// session built from the contract alone: a node with every past and present wired, state of the declared shapes
/// accepted, presents of exactly those shapes and types (so a present can be the next call's past), and each float
/// past of another shape refused with its name and declared layout. Instantiated once per operator (see
/// Runtime/OperatorContractTests); a new operator gets these checks by declaring one subclass.
/// </summary>
public abstract class OperatorContractFixture<TAttributes>
{
    protected const int Batch = 2, Seq = 3, KeyDim = 8, ValueDim = 6;

    protected abstract OperatorContract<TAttributes> Contract { get; }

    /// <summary>Attribute settings to run, each with its query and KV head counts.</summary>
    protected abstract IEnumerable<(TAttributes Attributes, int QueryHeads, int KvHeads)> Settings { get; }

    private static TensorProto.Types.DataType TypeOf(StateSpec<TAttributes> s) =>
        s.IsPosition ? TensorProto.Types.DataType.Int64 : TensorProto.Types.DataType.Float;

    private ModelProto Model(TAttributes a)
    {
        var c = Contract;
        var slots = c.States.Select((s, i) => new StatefulOpModel.StateSlot(s.Past, s.Present, TypeOf(s),
            [.. c.Tail(i, a, KeyDim, ValueDim).Prepend(Batch).Select(d => (Dim)d)])).ToList();
        return StatefulOpModel.Build($"{c.Name}_contract", slots, slots.Count, slots.Count, declareShapes: false, TensorProto.Types.DataType.Float,
            (b, inputs, outputs) => b.AttentionNode(c, [.. c.AttributeValues(a).Select(v => v.Value)], inputs, outputs));
    }

    private List<KeyValuePair<string, TypedTensor>> Inputs(TAttributes a, int qHeads, int kvHeads, int breakState = -1)
    {
        var c = Contract;
        var inputs = new List<KeyValuePair<string, TypedTensor>>
        {
            new("query", Activation(1, Batch, Seq, qHeads * KeyDim)),
            new("key", Activation(2, Batch, Seq, kvHeads * KeyDim)),
            new("value", Activation(3, Batch, Seq, kvHeads * ValueDim)),
        };
        for (var i = 0; i < c.States.Count; i++)
        {
            long[] shape = [Batch, .. c.Tail(i, a, KeyDim, ValueDim)];
            if (i == breakState) shape[^1]++;
            var n = (int)shape.Aggregate(1L, (x, d) => x * d);
            inputs.Add(new(c.States[i].Past, c.States[i].IsPosition ? TypedTensor.Of(new long[n], shape) : TypedTensor.Of(new float[n], shape)));
        }
        return inputs;
    }

    [Test]
    public void PresentsHaveTheDeclaredShapesAndFeedTheNextCall()
    {
        var c = Contract;
        var checkedStates = 0;
        foreach (var (a, qHeads, kvHeads) in Settings)
        {
            using var runner = new TypedModelRunner(Model(a));
            var inputs = Inputs(a, qHeads, kvHeads);
            for (var call = 0; call < 2; call++)
            {
                var got = runner.Run(inputs, ["output", .. c.States.Select(s => s.Present)]);
                Assert.That(got["output"].Shape, Is.EqualTo(new long[] { Batch, Seq, qHeads * ValueDim }), $"{a}: output");
                for (var i = 0; i < c.States.Count; i++)
                {
                    var present = got[c.States[i].Present];
                    Assert.That(present.Shape, Is.EqualTo((long[])[Batch, .. c.Tail(i, a, KeyDim, ValueDim)]), $"{a}: {c.States[i].Present}");
                    Assert.That(present.Data, c.States[i].IsPosition ? Is.TypeOf<long[]>() : Is.TypeOf<float[]>(), $"{a}: {c.States[i].Present}");
                    inputs[3 + i] = new(c.States[i].Past, present);
                    checkedStates++;
                }
            }
            var positions = c.States.Select((s, i) => (s, i)).Where(x => x.s.IsPosition).Select(x => inputs[3 + x.i].Value.Longs);
            Assert.That(positions.All(p => p.All(v => v == 2 * Seq)), $"{a}: every position counts both calls' tokens");
        }
        Assert.That(checkedStates, Is.GreaterThan(0));
    }

    [Test]
    public void EachFloatPastOfAnotherShapeIsRefusedWithItsLayout()
    {
        var c = Contract;
        var refused = 0;
        foreach (var (a, qHeads, kvHeads) in Settings)
        {
            using var runner = new TypedModelRunner(Model(a));
            for (var i = 0; i < c.States.Count; i++)
            {
                if (c.States[i].IsPosition) continue;
                var inputs = Inputs(a, qHeads, kvHeads, breakState: i);
                OrtAssert.RunFails(() => runner.Run(inputs, "output"), $"{c.States[i].Past} has shape");
                OrtAssert.RunFails(() => runner.Run(inputs, "output"), $"expected {c.States[i].Layout(a)} = [");
                refused++;
            }
        }
        Assert.That(refused, Is.GreaterThan(0));
    }

    private static TypedTensor Activation(int seed, params long[] shape) =>
        TypedTensor.Of(Seeded.Uniform(seed, (int)shape.Aggregate(1L, (x, d) => x * d)), shape);

    /// <summary>
    /// Each bad input is refused naming the tensor, its shape and what was expected; the same session then still
    /// gives the good call's output. The query/key/value checks are common to every operator (QkvShapes); the state
    /// checks follow the contract's declared states.
    /// </summary>
    [Test]
    public void BadActivationsAreRefusedByNameAndTheSessionSurvives()
    {
        var (a, qHeads, kvHeads) = Settings.First(x => x.QueryHeads >= 2 && x.KvHeads >= 2);
        using var runner = new TypedModelRunner(Model(a));
        var good = Inputs(a, qHeads, kvHeads);
        var want = runner.Run(good, "output")["output"].Floats;
        var cases = new (string Input, TypedTensor Bad, string Message)[]
        {
            ("query", Activation(1, Batch * Seq, qHeads * KeyDim),
                $"query must have rank 3 [batch, sequence, q_num_heads * head_dim], got shape [{Batch * Seq}, {qHeads * KeyDim}]"),
            ("key", Activation(2, Batch, Seq, kvHeads, KeyDim),
                $"key must have rank 3 [batch, sequence, kv_num_heads * head_dim], got shape [{Batch}, {Seq}, {kvHeads}, {KeyDim}]"),
            ("value", Activation(3, Batch, Seq + 1, kvHeads * ValueDim), "must agree on batch and sequence length"),
            ("query", Activation(1, 1, Batch * Seq, qHeads * KeyDim), "must agree on batch and sequence length"),
            ("query", Activation(1, Batch, Seq, qHeads * KeyDim + 1),
                $"query's last dimension {qHeads * KeyDim + 1} is not a positive multiple of q_num_heads={qHeads}"),
            ("key", Activation(2, Batch, Seq, kvHeads * (KeyDim + 1)),
                $"key's last dimension {kvHeads * (KeyDim + 1)} must be kv_num_heads * head_dim = {kvHeads} * {KeyDim} = {kvHeads * KeyDim}"),
            ("value", Activation(3, Batch, Seq, kvHeads * ValueDim + 1),
                $"value's last dimension {kvHeads * ValueDim + 1} is not a positive multiple of kv_num_heads={kvHeads}"),
        };
        foreach (var (input, bad, message) in cases)
        {
            var inputs = good.Select(x => x.Key == input ? new KeyValuePair<string, TypedTensor>(input, bad) : x).ToList();
            OrtAssert.RunFails(() => runner.Run(inputs, "output"), message);
            Assert.That(runner.Run(good, "output")["output"].Floats, Is.EqualTo(want), $"{Contract.Name}: the good call after '{message}'");
        }
    }

    [Test]
    public void BadStatesAreRefusedByNameAndTheSessionSurvives()
    {
        var c = Contract;
        var (a, qHeads, kvHeads) = Settings.First();
        using var runner = new TypedModelRunner(Model(a));
        var good = Inputs(a, qHeads, kvHeads);
        var want = runner.Run(good, "output")["output"].Floats;
        var refused = 0;
        for (var i = 0; i < c.States.Count; i++)
        {
            var name = c.States[i].Past;
            var cases = new List<(TypedTensor Bad, string Message)>();
            if (c.States[i].IsPosition)
            {
                cases.Add((TypedTensor.Of(new long[Batch + 1], Batch + 1), $"{name} has shape [{Batch + 1}]"));
                cases.Add((TypedTensor.Of(new long[] { 0, -2 }, Batch), $"{name}[1] is -2; token counts cannot be negative"));
                cases.Add((TypedTensor.Of([long.MaxValue - 1, 0], Batch), "overflows int64"));
            }
            else
            {
                var tail = c.Tail(i, a, KeyDim, ValueDim);
                long[] flat = [Batch * tail[0], .. tail[1..]];
                cases.Add((TypedTensor.Of(new float[flat.Aggregate(1L, (x, d) => x * d)], flat), $"{name} has shape [{string.Join(", ", flat)}]"));
            }
            foreach (var (bad, message) in cases)
            {
                var inputs = good.Select(x => x.Key == name ? new KeyValuePair<string, TypedTensor>(name, bad) : x).ToList();
                OrtAssert.RunFails(() => runner.Run(inputs, "output"), message);
                Assert.That(runner.Run(good, "output")["output"].Floats, Is.EqualTo(want), $"{c.Name}: the good call after '{message}'");
                refused++;
            }
        }
        Assert.That(refused, Is.GreaterThan(0));
    }
}
