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
            new("query", TypedTensor.Of(Seeded.Uniform(1, Batch * Seq * qHeads * KeyDim), Batch, Seq, qHeads * KeyDim)),
            new("key", TypedTensor.Of(Seeded.Uniform(2, Batch * Seq * kvHeads * KeyDim), Batch, Seq, kvHeads * KeyDim)),
            new("value", TypedTensor.Of(Seeded.Uniform(3, Batch * Seq * kvHeads * ValueDim), Batch, Seq, kvHeads * ValueDim)),
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
}
