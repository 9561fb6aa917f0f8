using NUnit.Framework;
using OnnxAttention.Graphs.Attention.Matchers;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;

namespace OnnxAttention.Tests.Graphs;

/// <summary>
/// MaskProbe runs a mask to decide what it is. A band (sliding-window) mask looks causal on short probes; the long
/// probes must tell it apart, or a fixed-size memory would replace attention that is not causal over the whole past.
/// </summary>
[TestFixture]
public class MaskProbeTests
{
    private const TensorProto.Types.DataType F = TensorProto.Types.DataType.Float, I = TensorProto.Types.DataType.Int64;

    /// <summary>
    /// Scores [b, 1, S, P + S] = Q·K^T + band + padding: query i (at P + i) sees key j when j &lt;= P + i,
    /// P + i - j &lt; <paramref name="band"/> and attention_mask[j] is 1. Q and K are zeros shaped from the inputs.
    /// </summary>
    private static ModelProto Model(long band)
    {
        var b = new ModelBuilder("band_mask")
            .Input("input_ids", I, "batch", "seq")
            .Input("attention_mask", I, "batch", "total")
            .Initializer(Tensors.Int64("one", [1], 1))
            .Initializer(Tensors.Int64("zero", [0], 1))
            .Initializer(Tensors.Int64("four", [4], 1))
            .Initializer(Tensors.Int64("band", [band], 1))
            .Initializer(Tensors.Float("lowest", [-1e9f], 1))
            .Initializer(Tensors.Float("fzero", [0f], 1))
            .Initializer(Tensors.Int64("axis0", [0], 1))
            .Initializer(Tensors.Int64("axes12", [1, 2], 2))
            .Node("Shape", ["input_ids"], ["ids_shape"])
            .Node("Shape", ["attention_mask"], ["mask_shape"])
            .Node("Gather", ["ids_shape", "one"], ["s"], attributes: Attr.Int("axis", 0))
            .Node("Gather", ["mask_shape", "one"], ["total"], attributes: Attr.Int("axis", 0))
            .Node("Gather", ["ids_shape", "zero"], ["batch"], attributes: Attr.Int("axis", 0))
            .Node("Concat", ["batch", "one", "s", "four"], ["q_shape"], attributes: Attr.Int("axis", 0))
            .Node("Concat", ["batch", "one", "four", "total"], ["kt_shape"], attributes: Attr.Int("axis", 0))
            .Node("ConstantOfShape", ["q_shape"], ["q"], attributes: Attr.Tensor("value", Tensors.Float("v", [0f], 1)))
            .Node("ConstantOfShape", ["kt_shape"], ["kt"], attributes: Attr.Tensor("value", Tensors.Float("v", [0f], 1)))
            .Node("MatMul", ["q", "kt"], ["raw"])
            // Positions: queries at total - S + i, keys at j.
            .Node("Squeeze", ["total", "axis0"], ["total_scalar"])
            .Node("Squeeze", ["s", "axis0"], ["s_scalar"])
            .Node("Sub", ["total_scalar", "s_scalar"], ["past"])
            .Node("Range", ["past", "total_scalar", "one_scalar"], ["qpos"])
            .Node("Range", ["zero_scalar", "total_scalar", "one_scalar"], ["kpos"])
            .Node("Unsqueeze", ["qpos", "one"], ["qcol"])
            .Node("Sub", ["qcol", "kpos"], ["distance"])
            .Node("GreaterOrEqual", ["distance", "zero"], ["causal"])
            .Node("Less", ["distance", "band"], ["near"])
            .Node("And", ["causal", "near"], ["allowed"])
            .Node("Where", ["allowed", "fzero", "lowest"], ["band_add"])
            .Node("Cast", ["attention_mask"], ["mask_f"], attributes: Attr.Int("to", (long)F))
            .Node("Sub", ["one_f", "mask_f"], ["is_pad"])
            .Node("Mul", ["is_pad", "lowest"], ["pad_add"])
            .Node("Unsqueeze", ["pad_add", "axes12"], ["pad4"])
            .Node("Add", ["raw", "band_add"], ["banded"])
            .Node("Add", ["banded", "pad4"], ["scores"])
            .Output("scores", F, "batch", 1, "seq", "total");
        b.Initializer(Tensors.Int64("one_scalar", [1]));
        b.Initializer(Tensors.Int64("zero_scalar", [0]));
        b.Initializer(Tensors.Float("one_f", [1f], 1));
        return b.Build();
    }

    private static MaskProbe.Outcome Probe(long band)
    {
        var model = Model(band);
        return MaskProbe.Run(new Graph(model.Graph), new ValueShapes(model.Graph), "scores", "raw");
    }

    [Test]
    public void ABandOfTwentyKeysIsNotTakenForCausal() =>
        Assert.That(Probe(20).Verdict, Is.EqualTo(MaskProbe.Verdict.Unknown));

    [Test]
    public void ABandWiderThanEveryProbeLooksCausalWithPadding()
    {
        // The limit of running a mask: a band wider than the longest probe (301 keys) cannot be seen.
        var outcome = Probe(100_000);
        Assert.That(outcome.Verdict, Is.EqualTo(MaskProbe.Verdict.CausalKeyPadding));
        Assert.That(outcome.PaddingInput, Is.EqualTo("attention_mask"));
    }
}
