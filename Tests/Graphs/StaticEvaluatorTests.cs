using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Tests.Support;

namespace OnnxAttention.Tests.Graphs;

/// <summary>Values and shapes folded before run time, checked against what ONNX defines them to be.</summary>
[TestFixture]
public class StaticEvaluatorTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float;
    private const TensorProto.Types.DataType I64 = TensorProto.Types.DataType.Int64;

    private static StaticEvaluator Evaluator(ModelProto model) => new(new Graph(model.Graph), new ValueShapes(model.Graph));

    private static StaticEvaluator Expanded(string name, out string prefix)
    {
        prefix = $"Attention_{name}_function_";
        var model = ConformanceCase.Load(name).Model();
        return Evaluator(model);
    }

    [Test]
    public void FoldsTheRunTimeScaleOfTheExpandedAttentionFunction()
    {
        // Q [2, 3, 4, 8]: scale 1/sqrt(8), applied as its square root to Q and to K^T, computed in float32.
        var eval = Expanded("test_attention_4d_causal_expanded", out var p);
        Assert.That(eval.Value(p + "QKHeadSize")!.Data, Is.EqualTo(new double[] { 8 }));
        Assert.That(eval.TryScalar(p + "ScaleFactorF", out var s), Is.True);
        Assert.That(s, Is.EqualTo((double)(float)Math.Sqrt((float)(1 / Math.Sqrt(8)))).Within(1e-7));
        Assert.That(eval.Value(p + "KExpandShape")!.Data, Is.EqualTo(new double[] { 2, 3, 1, 6, 8 }));
    }

    [Test]
    public void FoldsTheGroupedHeadCountFromIntegerDivision()
    {
        var eval = Expanded("test_attention_4d_gqa_expanded", out var p);
        Assert.That(eval.Value(p + "InterleaveDim")!.Data, Is.EqualTo(new double[] { 3 }), "9 query heads / 3 KV heads");
        Assert.That(eval.Shape(p + "KAttentionInput"), Is.EqualTo(new long?[] { 2, 9, 6, 8 }));
    }

    [Test]
    public void FoldsTheCausalMaskBuiltFromRangeLessWhere()
    {
        // 4 queries, 6 keys, no past: query i sees keys 0..i.
        var eval = Expanded("test_attention_4d_causal_expanded", out var p);
        var mask = eval.Value(p + "MaskTri")!;
        Assert.That(mask.Shape, Is.EqualTo(new long[] { 4, 6 }));
        for (var i = 0; i < 4; i++)
        {
            for (var j = 0; j < 6; j++)
            {
                Assert.That(mask.Data[i * 6 + j], j <= i ? Is.Zero : Is.EqualTo(double.NegativeInfinity), $"({i}, {j})");
            }
        }
    }

    [Test]
    public void IntegerDivisionTruncatesAndModTakesTheDivisorsSign()
    {
        var model = new ModelBuilder()
            .Initializer(Tensors.Int64("a", [-7], 1)).Initializer(Tensors.Int64("b", [2], 1))
            .Initializer(Tensors.Float("x", [-7.5f], 1)).Initializer(Tensors.Float("y", [2f], 1))
            .Node("Div", ["a", "b"], ["div"]).Node("Mod", ["a", "b"], ["mod"])
            .Node("Mod", ["x", "y"], ["fmod"], attributes: Attr.Int("fmod", 1))
            .Node("Div", ["x", "y"], ["fdiv"])
            .Build();
        var eval = Evaluator(model);
        Assert.That(eval.Value("div")!.Data, Is.EqualTo(new double[] { -3 }));
        Assert.That(eval.Value("mod")!.Data, Is.EqualTo(new double[] { 1 }));
        Assert.That(eval.Value("fmod")!.Data, Is.EqualTo(new double[] { -1.5 }));
        Assert.That(eval.Value("fdiv")!.Data, Is.EqualTo(new double[] { -3.75 }));
    }

    [Test]
    public void ReadsBFloat16ConstantsAndRoundsBFloat16Results()
    {
        // 1.5 is 0x3FC0 in bfloat16; 1 / 3 in float32 is 0x3EAAAAAB, which rounds to 0x3EAB = 0.333984375.
        var half = new TensorProto { Name = "c", DataType = (int)TensorProto.Types.DataType.Bfloat16, Dims = { 1 } };
        half.Int32Data.Add(0x3FC0);
        var raw = new TensorProto
        {
            Name = "r",
            DataType = (int)TensorProto.Types.DataType.Bfloat16,
            Dims = { 1 },
            RawData = Google.Protobuf.ByteString.CopyFrom(0xC0, 0x3F)
        };
        var model = new ModelBuilder()
            .Initializer(half).Initializer(raw).Initializer(Tensors.Float("three", [3f], 1)).Initializer(Tensors.Float("one", [1f], 1))
            .Node("Div", ["one", "three"], ["third"])
            .Node("Cast", ["third"], ["third_bf16"], attributes: Attr.Int("to", (long)TensorProto.Types.DataType.Bfloat16))
            .Build();
        var eval = Evaluator(model);
        Assert.That(eval.Value("c")!.Data, Is.EqualTo(new double[] { 1.5 }), "int32_data");
        Assert.That(eval.Value("r")!.Data, Is.EqualTo(new double[] { 1.5 }), "raw_data, little-endian");
        Assert.That(eval.Value("third_bf16")!.Data, Is.EqualTo(new double[] { 0.333984375 }));
    }

    [Test]
    public void InfersShapesThroughReshapeTransposeAndSlicesOfShape()
    {
        var model = new ModelBuilder()
            .Input("x", F, "batch", 4, 24)
            .Initializer(Tensors.Int64("split", [0, 0, 3, -1], 4))
            .Initializer(Tensors.Int64("start", [-1], 1)).Initializer(Tensors.Int64("end", [long.MaxValue], 1))
            .Node("Reshape", ["x", "split"], ["heads"])
            .Node("Transpose", ["heads"], ["bhsd"], attributes: Attr.Ints("perm", 0, 2, 1, 3))
            .Node("Shape", ["bhsd"], ["dims"])
            .Node("Slice", ["dims", "start", "end"], ["last"])
            .Node("Shape", ["x"], ["tail"], attributes: Attr.Int("start", 1))
            .Node("Relu", ["x"], ["data"])
            .Build();
        var eval = Evaluator(model);
        Assert.That(eval.Shape("bhsd"), Is.EqualTo(new long?[] { null, 3, 4, null }), "-1 stays unknown while the batch is symbolic");
        Assert.That(eval.Value("dims"), Is.Null, "the batch is symbolic");
        Assert.That(eval.Value("tail")!.Data, Is.EqualTo(new double[] { 4, 24 }));
        Assert.That(eval.Value("data"), Is.Null, "values of a graph input are not known before run time");
        Assert.That(eval.ElementType("dims"), Is.EqualTo(I64));
    }

    [Test]
    public void InfersTheInferredReshapeDimensionWhenTheInputIsStatic()
    {
        var model = new ModelBuilder()
            .Input("x", F, 2, 4, 24)
            .Initializer(Tensors.Int64("split", [0, 0, 3, -1], 4))
            .Initializer(Tensors.Int64("start", [-1], 1)).Initializer(Tensors.Int64("end", [long.MaxValue], 1))
            .Node("Reshape", ["x", "split"], ["heads"])
            .Node("Transpose", ["heads"], ["bhsd"], attributes: Attr.Ints("perm", 0, 2, 1, 3))
            .Node("Shape", ["bhsd"], ["dims"])
            .Node("Slice", ["dims", "start", "end"], ["last"])
            .Build();
        var eval = Evaluator(model);
        Assert.That(eval.Shape("bhsd"), Is.EqualTo(new long?[] { 2, 3, 4, 8 }));
        Assert.That(eval.Value("last")!.Data, Is.EqualTo(new double[] { 8 }));
    }

    [Test]
    public void ADeepDataPathDoesNotExhaustTheStack()
    {
        // Large models put thousands of nodes between the ids and the last attention; shapes must still flow.
        const int depth = 50_000;
        var b = new ModelBuilder().Input("x", F, "batch", 3);
        for (var i = 0; i < depth; i++) b.Node("Relu", [i == 0 ? "x" : $"r{i - 1}"], [$"r{i}"]);
        var model = b.Node("Shape", [$"r{depth - 1}"], ["dims"], attributes: Attr.Int("start", 1)).Build();
        var eval = Evaluator(model);
        Assert.That(eval.Value("dims")!.Data, Is.EqualTo(new double[] { 3 }));
        Assert.That(eval.Value($"r{depth - 1}"), Is.Null);
    }
}
