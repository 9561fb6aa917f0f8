using NUnit.Framework;
using OnnxAttention.Graphs.Building;
using OnnxAttention.Graphs.Ir;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Graphs.Swapping;
using OnnxAttention.Tests.Support;
using static OnnxAttention.Tests.Swapping.ContribAttentionModels;

namespace OnnxAttention.Tests.Swapping;

/// <summary>
/// ONNX Runtime's com.microsoft.MultiHeadAttention and GroupQueryAttention are recognised and replaced. The softmax
/// rule and a window at least as long as the sequence are exact causal softmax like the operators, so the swapped
/// model must give the original's output, whole and in pieces carrying its state; a fixed-size memory must give
/// the same output token by token as over the whole sequence. What no rule can take is refused with the reason.
/// </summary>
[TestFixture]
public class ContribAttentionSwapTests
{
    private const int B = 2, Seq = 11;
    private static readonly int[] Pieces = [4, 1, 6];

    private static List<PieceRunner.SequenceInput> Inputs(int qWidth, int kWidth, int vWidth) =>
    [
        new("q", Seeded.Uniform(21, B * Seq * qWidth, -2, 2), qWidth),
        new("k", Seeded.Uniform(22, B * Seq * kWidth, -2, 2), kWidth),
        new("v", Seeded.Uniform(23, B * Seq * vWidth), vWidth),
    ];

    private static float[] Original(ModelProto model, List<PieceRunner.SequenceInput> inputs) =>
        PieceRunner.WithOwnCache(model, inputs, B, Seq, [Seq], "y", []);

    /// <summary>Swaps a copy, checks it was this operator that was replaced, and runs it whole and in pieces.</summary>
    private static (float[] Whole, float[] InPieces) Swapped(ModelProto model, string rule, List<PieceRunner.SequenceInput> inputs, string pattern)
    {
        var swapped = model.Clone();
        var report = AttentionSwapper.Swap(swapped, AttentionRule.Parse(rule));
        Assert.That(report.Replaced.Single().Pattern, Is.EqualTo(pattern));
        Assert.That(swapped.Graph.Node.Any(n => n.Domain == Ms && n.OpType is "GroupQueryAttention" or "MultiHeadAttention"), Is.False);
        return (PieceRunner.Swapped(swapped, inputs, B, Seq, [Seq], "y"), PieceRunner.Swapped(swapped, inputs, B, Seq, Pieces, "y"));
    }

    private static string Refusal(ModelProto model, string rule) =>
        Assert.Throws<GraphException>(() => AttentionSwapper.Swap(model, AttentionRule.Parse(rule)))!.Message;

    [TestCase("softmax", false, false)]
    [TestCase("window:16", false, false)]
    [TestCase("softmax", true, false)]
    [TestCase("softmax", true, true)]
    [TestCase("window:11", true, true)]
    public void GroupQueryAttentionSwapGivesTheOperatorsOutput(string rule, bool rotary, bool interleaved)
    {
        var c = new Gqa(HeadDim: rotary ? 16 : 8) { Rotary = rotary, Interleaved = interleaved };
        var inputs = Inputs(c.QWidth, c.KvWidth, c.KvWidth);
        var want = Original(GroupQueryAttention(c), inputs);
        var (whole, pieces) = Swapped(GroupQueryAttention(c), rule, inputs, "com.microsoft.GroupQueryAttention");
        TensorAssert.Close(whole, want, Tolerance.Float32, $"{rule}, whole");
        TensorAssert.Close(pieces, want, Tolerance.Float32, $"{rule}, pieces 4, 1, 6");
    }

    /// <summary>
    /// Softmax keeps ORT's GroupQueryAttention (a faster CPU kernel than Attention-23) for every call that kernel
    /// takes, behind an If that sends a prompt continued from a past at batch > 1 (which it refuses) to Attention-23.
    /// Both branches' results are checked by <see cref="GroupQueryAttentionSwapGivesTheOperatorsOutput"/> (batch 2,
    /// pieces 4, 1, 6: the first two on GroupQueryAttention, the last on Attention-23).
    /// </summary>
    [Test]
    public void SoftmaxOnGroupQueryAttentionDispatchesOnShapes()
    {
        var swapped = GroupQueryAttention(new Gqa(HeadDim: 8));
        AttentionSwapper.Swap(swapped, AttentionRule.Parse("softmax"));
        var dispatch = swapped.Graph.Node.Single(n => n.OpType == "If");
        NodeProto Inner(string branch) => dispatch.Attribute.Single(a => a.Name == branch).G.Node.Single();
        Assert.That(Inner("then_branch").OpType, Is.EqualTo("Attention"));
        Assert.That((Inner("else_branch").Domain, Inner("else_branch").OpType), Is.EqualTo((Ms, "GroupQueryAttention")));
        Assert.That(swapped.Graph.Node.Any(n => n.OpType == "Attention"), Is.False, "no Attention-23 outside the If");
    }

    [Test]
    public void ALocalWindowIsReproducedByTheWindowRuleOfItsSizeAndRefusedBySoftmax()
    {
        var c = new Gqa(HeadDim: 16) { LocalWindowSize = 3, Rotary = true };
        var inputs = Inputs(c.QWidth, c.KvWidth, c.KvWidth);
        var want = Original(GroupQueryAttention(c), inputs);
        var full = Original(GroupQueryAttention(c with { LocalWindowSize = -1 }), inputs);
        Assert.That(want.Zip(full).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-3), "the local window changes the output");
        // Measured on ORT 1.31.1: local_window_size w lets query i see keys i - w + 1 .. i (w keys, itself included).
        var (whole, pieces) = Swapped(GroupQueryAttention(c), "window:3", inputs, "com.microsoft.GroupQueryAttention");
        TensorAssert.Close(whole, want, Tolerance.Float32, "window:3, whole");
        TensorAssert.Close(pieces, want, Tolerance.Float32, "window:3, pieces");
        Assert.That(Refusal(GroupQueryAttention(c), "softmax"), Does.Contain("a local window of 3 keys").And.Contain("window:3 reproduces it"));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void LinearRuleOnGroupQueryAttentionRunsTokenByTokenAsWhole(bool rotary)
    {
        var c = new Gqa(HeadDim: 16) { Rotary = rotary };
        var inputs = Inputs(c.QWidth, c.KvWidth, c.KvWidth);
        var swapped = GroupQueryAttention(c);
        AttentionSwapper.Swap(swapped, AttentionRule.Parse("linear-elu"));
        var whole = PieceRunner.Swapped(swapped, inputs, B, Seq, [Seq], "y");
        var stepwise = PieceRunner.Swapped(swapped, inputs, B, Seq, PieceRunner.Chunks(Seq, 1), "y");
        TensorAssert.Close(stepwise, whole, Tolerance.Float32Reordered, "token by token vs whole");
    }

    [TestCase("softmax", false)]
    [TestCase("softmax", true)]
    [TestCase("window:16", true)]
    public void MultiHeadAttentionSwapGivesTheOperatorsOutput(string rule, bool bias)
    {
        var c = new Mha { Bias = bias };
        var inputs = Inputs(c.QWidth, c.QWidth, c.VWidth);
        var want = Original(MultiHeadAttention(c), inputs);
        var (whole, pieces) = Swapped(MultiHeadAttention(c), rule, inputs, "com.microsoft.MultiHeadAttention");
        TensorAssert.Close(whole, want, Tolerance.Float32, $"{rule}, whole");
        TensorAssert.Close(pieces, want, Tolerance.Float32, $"{rule}, pieces 4, 1, 6");
    }

    [Test]
    public void LinearRuleOnMultiHeadAttentionRunsTokenByTokenAsWhole()
    {
        var c = new Mha { Bias = true };
        var inputs = Inputs(c.QWidth, c.QWidth, c.VWidth);
        var swapped = MultiHeadAttention(c);
        AttentionSwapper.Swap(swapped, AttentionRule.Parse("linear-elu"));
        var whole = PieceRunner.Swapped(swapped, inputs, B, Seq, [Seq], "y");
        var stepwise = PieceRunner.Swapped(swapped, inputs, B, Seq, PieceRunner.Chunks(Seq, 1), "y");
        TensorAssert.Close(stepwise, whole, Tolerance.Float32Reordered, "token by token vs whole");
    }

    [Test]
    public void WhatNoRuleCanTakeIsRefusedWithTheReason()
    {
        Assert.That(Refusal(MultiHeadAttention(new Mha { PaddingMask = true }), "softmax"), Does.Contain("a key_padding_mask ('key_padding_mask') is not supported"));
        Assert.That(Refusal(MultiHeadAttention(new Mha { Causal = false }), "linear-elu"), Does.Contain("no causal mask: bidirectional attention"));
        Assert.That(Refusal(GroupQueryAttention(new Gqa { Softcap = 30 }), "window:16"), Does.Contain("the scores are soft-capped (30)"));
        foreach (var rule in new[] { "linear-elu", "softmax" })
        {
            Assert.That(Refusal(GroupQueryAttention(new Gqa { SeqlensInput = true }), rule),
                Does.Contain("per-row key lengths from the values of graph input 'seqlens_k' (padding)"), rule);
        }

        var packed = new ModelBuilder(defaultOpset: 18).Opset(Ms, 1)
            .Input("qkv", F, 1, "s", 32).Input("seqlens_k", I32, 1).Input("total", I32)
            .Node("GroupQueryAttention", ["qkv", "", "", "", "", "seqlens_k", "total"], ["y"], domain: Ms, name: "packed_gqa",
                attributes: [Attr.Int("num_heads", 2), Attr.Int("kv_num_heads", 1)])
            .Output("y", F, 1, "s", 16).Build();
        Assert.That(Refusal(packed, "softmax"), Does.Contain("com.microsoft.GroupQueryAttention 'packed_gqa'").And.Contain("per-row key lengths from the values of graph input 'seqlens_k'"),
            "packed QKV is taken; lengths fed as an input of their own are not row lengths of a mask");

        var packedMha = new ModelBuilder(defaultOpset: 18).Opset(Ms, 1)
            .Input("qkv", F, 1, "s", 2, 3, 4)
            .Node("MultiHeadAttention", ["qkv"], ["y"], domain: Ms, name: "packed_mha", attributes: [Attr.Int("num_heads", 2)])
            .Output("y", F, 1, "s", 8).Build();
        Assert.That(Refusal(packedMha, "linear-elu"), Does.Contain("packed QKV (query [B, S, H, 3, d]"));
    }

    /// <summary>An attention operator that keeps its own KV cache: past_k/past_v inputs, present_k/present_v outputs.</summary>
    private static (ModelProto Model, int QWidth, int KWidth, int VWidth, int KvHeads, int D, int Dv) OwnCacheModel(string op)
    {
        switch (op)
        {
            case "gqa" or "gqa-local":
                {
                    var c = new Gqa(HeadDim: 16) { OwnCache = true, Rotary = true, LocalWindowSize = op == "gqa-local" ? 3 : -1 };
                    return (GroupQueryAttention(c), c.QWidth, c.KvWidth, c.KvWidth, c.KvHeads, c.HeadDim, c.HeadDim);
                }
            case "mha":
                {
                    // The operator wants value heads as large as key heads when it keeps a cache.
                    var c = new Mha(ValueHeadDim: 6) { OwnCache = true, Bias = true };
                    return (MultiHeadAttention(c), c.QWidth, c.QWidth, c.VWidth, c.Heads, c.HeadDim, c.ValueHeadDim);
                }
            default:
                {
                    const int hq = 4, hkv = 2, d = 5, dv = 3;
                    var model = new ModelBuilder(defaultOpset: 23)
                        .Input("q", F, B, "s", hq * d).Input("k", F, B, "s", hkv * d).Input("v", F, B, "s", hkv * dv)
                        .Input("past_k", F, B, hkv, "p", d).Input("past_v", F, B, hkv, "p", dv)
                        .Node("Attention", ["q", "k", "v", "", "past_k", "past_v"], ["y", "present_k", "present_v"], name: "attention",
                            attributes: [Attr.Int("is_causal", 1), Attr.Int("q_num_heads", hq), Attr.Int("kv_num_heads", hkv)])
                        .Output("y", F, B, "s", hq * dv).Output("present_k", F, B, hkv, "t", d).Output("present_v", F, B, hkv, "t", dv)
                        .Build();
                    return (model, hq * d, hkv * d, hkv * dv, hkv, d, dv);
                }
        }
    }

    [TestCase("gqa", "softmax")]
    [TestCase("gqa", "window:11")]
    [TestCase("gqa-local", "window:3")]
    [TestCase("mha", "softmax")]
    [TestCase("mha", "window:16")]
    [TestCase("attention", "softmax")]
    [TestCase("attention", "window:11")]
    public void AnOperatorsOwnKvCacheBecomesTheReplacementsState(string op, string rule)
    {
        var (model, qw, kw, vw, hkv, d, dv) = OwnCacheModel(op);
        var inputs = Inputs(qw, kw, vw);
        // The reference: the original model token by token, feeding its presents back as its pasts.
        var want = PieceRunner.WithOwnCache(model, inputs, B, Seq, PieceRunner.Chunks(Seq, 1), "y",
            [new("past_k", "present_k", [B, hkv, 0, d]), new("past_v", "present_v", [B, hkv, 0, dv])]);

        var swapped = model.Clone();
        var report = AttentionSwapper.Swap(swapped, AttentionRule.Parse(rule));
        Assert.That(report.Replaced.Single().Cache, Is.Not.Null);
        Assert.That(swapped.Graph.Input.Select(i => i.Name), Does.Not.Contain("past_k").And.Not.Contain("past_v"));
        Assert.That(swapped.Graph.Output.Select(o => o.Name), Does.Not.Contain("present_k").And.Not.Contain("present_v"));
        Assert.That(report.InterfaceChanges[0], Does.StartWith("KV cache inputs past_k, past_v and outputs present_k, present_v removed"));
        TensorAssert.Close(PieceRunner.Swapped(swapped, inputs, B, Seq, [Seq], "y"), want, Tolerance.Float32, $"{op} -> {rule}, whole");
        TensorAssert.Close(PieceRunner.Swapped(swapped, inputs, B, Seq, [3, 1, 4, 3], "y"), want, Tolerance.Float32, $"{op} -> {rule}, pieces");
    }

    [Test]
    public void InspectionSaysWhatWasFoundAndWhy()
    {
        var (model, _, _, _, _, _, _) = OwnCacheModel("gqa");
        var m = OnnxAttention.Graphs.Attention.AttentionFinder.Find(new Graph(model.Graph), new ValueShapes(model.Graph)).Matches.Single();
        Assert.That(m.Describe(), Is.EqualTo("com.microsoft.GroupQueryAttention: 4 query heads, 2 KV heads, head dim 16, scale 0.25, causal, mask: causal, " +
            "rotary from 'cos_cache'/'sin_cache', KV cache 'past_k'/'past_v' -> 'present_k'/'present_v' (can become state)"));
    }
}
