using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Graphs;

[TestFixture]
public class GraphIrTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;

    private static Graph Chain() => new(new ModelBuilder()
        .Input("x", F, 2)
        .Node("Relu", ["x"], ["a"], name: "relu")
        .Node("Neg", ["a"], ["b"], name: "neg")
        .Node("Abs", ["a"], ["c"], name: "abs")
        .Node("Add", ["b", "c"], ["y"], name: "add")
        .Output("y", F, 2)
        .Build().Graph);

    [Test]
    public void KnowsProducersAndConsumers()
    {
        var g = Chain();
        Assert.That(g.Producer("a")!.Name, Is.EqualTo("relu"));
        Assert.That(g.Consumers("a").Select(n => n.Name), Is.EquivalentTo(new[] { "neg", "abs" }));
        Assert.That(g.SoleConsumer("a"), Is.Null);
        Assert.That(g.SoleConsumer("b")!.Name, Is.EqualTo("add"));
        Assert.That(g.IsGraphInput("x"), Is.True);
    }

    [Test]
    public void RefusesToRemoveANodeWhoseOutputIsStillRead()
    {
        var g = Chain();
        var e = Assert.Throws<GraphException>(() => g.Remove([g.Producer("b")!]));
        Assert.That(e!.Message, Does.Contain("its output 'b' is still read by Add 'add'"));
        Assert.That(g.Nodes, Has.Count.EqualTo(4));
    }

    [Test]
    public void RemovesDeadCodeAfterRewiring()
    {
        var g = Chain();
        g.ReplaceUses("c", "b");          // add now reads b twice; abs is dead
        Assert.That(g.RemoveDeadCode(), Is.EqualTo(1));
        Assert.That(g.Nodes.Select(n => n.Name), Is.EquivalentTo(new[] { "relu", "neg", "add" }));
    }

    [Test]
    public void WritesNodesBackInTopologicalOrder()
    {
        var proto = new ModelBuilder()
            .Input("x", F, 2)
            .Node("Neg", ["a"], ["y"], name: "second")
            .Node("Relu", ["x"], ["a"], name: "first")
            .Output("y", F, 2)
            .Build().Graph;
        var written = new Graph(proto).ToProto();
        Assert.That(written.Node.Select(n => n.Name), Is.EqualTo(new[] { "first", "second" }));
    }

    [Test]
    public void ACycleIsReportedWithANodeOnIt()
    {
        var proto = new ModelBuilder()
            .Input("x", F, 2)
            .Node("Add", ["x", "b"], ["a"], name: "one")
            .Node("Relu", ["a"], ["b"], name: "two")
            .Output("b", F, 2)
            .Build().Graph;
        var e = Assert.Throws<GraphException>(() => new Graph(proto).TopologicalOrder());
        Assert.That(e!.Message, Does.Contain("the graph has a cycle through"));
    }

    [Test]
    public void AValueProducedTwiceIsReported()
    {
        var proto = new ModelBuilder()
            .Input("x", F, 2)
            .Node("Relu", ["x"], ["a"], name: "one")
            .Node("Neg", ["x"], ["a"], name: "two")
            .Output("a", F, 2)
            .Build().Graph;
        var e = Assert.Throws<GraphException>(() => new Graph(proto).Producer("a"));
        Assert.That(e!.Message, Does.Contain("value 'a' is produced twice"));
    }

    /// <summary>An If listed before the producer of a value only its branches read (ONNX lets a subgraph name outer values).</summary>
    private static Graph WithSubgraphRead()
    {
        static GraphProto Branch(string name, string reads, string local)
        {
            var branch = new GraphProto { Name = name };
            var node = new NodeProto { OpType = "Neg", Name = name + ".neg" };
            node.Input.Add(reads);
            node.Output.Add(local);
            branch.Node.Add(node);
            branch.Output.Add(new ValueInfoProto { Name = local, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)F } } });
            return branch;
        }
        var proto = new ModelBuilder()
            .Input("x", F, 2)
            .Input("cond", TensorProto.Types.DataType.Bool, 1)
            .Node("If", ["cond"], ["y"], name: "if")
            .Node("Relu", ["x"], ["a"], name: "relu")
            .Node("Abs", ["x"], ["b"], name: "abs")
            .Output("y", F, 2)
            .Build().Graph;
        var dispatch = proto.Node.First(n => n.Name == "if");
        dispatch.Attribute.Add(new AttributeProto { Name = "then_branch", Type = AttributeProto.Types.AttributeType.Graph, G = Branch("then", "a", "t") });
        dispatch.Attribute.Add(new AttributeProto { Name = "else_branch", Type = AttributeProto.Types.AttributeType.Graph, G = Branch("else", "x", "e") });
        return new Graph(proto);
    }

    [Test]
    public void ASubgraphsReadOfAnOuterValueCountsAsAUse()
    {
        var g = WithSubgraphRead();
        Assert.That(g.Consumers("a").Select(n => n.Name), Is.EqualTo(new[] { "if" }));
        Assert.That(g.Consumers("cond").Select(n => n.Name), Is.EqualTo(new[] { "if" }));
        Assert.That(g.Consumers("t"), Is.Empty, "a value the branch defines is not read from outside");
        Assert.That(g.TopologicalOrder().Select(n => n.Name).ToList().IndexOf("relu"), Is.LessThan(g.TopologicalOrder().Select(n => n.Name).ToList().IndexOf("if")));
        Assert.That(g.RemoveDeadCode(), Is.EqualTo(1), "abs is dead, relu is read by the branch");
        Assert.That(g.Nodes.Select(n => n.Name), Is.EquivalentTo(new[] { "if", "relu" }));
    }

    [Test]
    public void RenamingAnOuterValueFollowsItIntoSubgraphs()
    {
        var g = WithSubgraphRead();
        g.ReplaceUses("a", "b");
        var dispatch = g.Producer("y")!.Proto;
        Assert.That(dispatch.Attribute.First(a => a.Name == "then_branch").G.Node[0].Input, Is.EqualTo(new[] { "b" }));
        Assert.That(g.Consumers("b").Select(n => n.Name), Is.EqualTo(new[] { "if" }));
        Assert.That(g.RemoveDeadCode(), Is.EqualTo(1), "relu is dead now, abs is read");
    }
}
