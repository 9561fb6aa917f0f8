using OnnxAttention.Operators.AttentionCommon;
using OnnxAttention.Operators.Interop;
using OnnxAttention.Operators.Registration;

namespace OnnxAttention.Operators.Runtime;

/// <summary>
/// Everything an attention operator promises about its interface, declared once per operator (its
/// <c>*Contract.cs</c>) and read by its schema, shape checks, CPU and CUDA kernels, the swap's replacement and the
/// tests: the attributes (and how to spell a <typeparamref name="TAttributes"/> back into them), the state tensors in
/// order, and any further optional inputs. Inputs are always query, key, value, then one past per state, then the
/// further inputs; outputs are always output, then one present per state.
/// </summary>
public sealed class OperatorContract<TAttributes>(
    string name,
    string doc,
    IReadOnlyList<AttributeSpec> attributes,
    Func<TAttributes, object[]> attributeValues,
    IReadOnlyList<StateSpec<TAttributes>> states,
    Func<OrtElementType, IReadOnlyList<TensorSpec>>? furtherInputs = null)
{
    public string Name { get; } = name;

    public string Doc { get; } = doc;

    public IReadOnlyList<AttributeSpec> Attributes { get; } = attributes;

    public IReadOnlyList<StateSpec<TAttributes>> States { get; } = states;

    /// <summary>Inputs after the states, typed by the activation type (empty for most operators).</summary>
    public IReadOnlyList<TensorSpec> FurtherInputs(OrtElementType activation) =>
        [.. furtherInputs?.Invoke(activation) ?? [], .. AttentionInputs.Trailing(activation)];

    public static int PastInput(int state) => AttentionInputs.FirstPast + state;

    public static int PresentOutput(int state) => AttentionInputs.FirstPresent + state;

    /// <summary>The index of the state called <paramref name="name"/> (without past_/present_).</summary>
    public int State(string name)
    {
        for (var i = 0; i < States.Count; i++)
        {
            if (States[i].Name == name) return i;
        }
        throw new ArgumentException($"{Name} has no state '{name}'", nameof(name));
    }

    /// <summary>The input index of a further input (see <see cref="FurtherInputs"/>).</summary>
    public int FurtherInput(string name)
    {
        var further = FurtherInputs(OrtElementType.Float);
        for (var i = 0; i < further.Count; i++)
        {
            if (further[i].Name == name) return AttentionInputs.FirstPast + States.Count + i;
        }
        throw new ArgumentException($"{Name} has no input '{name}'", nameof(name));
    }

    public OperatorSchema Schema(OrtElementType t) => new(
        Name,
        OperatorRegistry.Domain,
        Inputs:
        [
            new("query", t, Doc: "[batch, sequence, q_num_heads * head_dim]", Layout: BatchLayout.Tokens),
            new("key", t, Doc: "[batch, sequence, kv_num_heads * head_dim]", Layout: BatchLayout.Tokens),
            new("value", t, Doc: "[batch, sequence, kv_num_heads * v_head_dim]", Layout: BatchLayout.Tokens),
            .. States.Select(s => new TensorSpec(s.Past, s.ElementType, Optional: true, Doc: s.Doc, Layout: s.BatchLayout)),
            .. FurtherInputs(t),
        ],
        Outputs:
        [
            new("output", t, Doc: "[batch, sequence, q_num_heads * v_head_dim]", Layout: BatchLayout.Tokens),
            .. States.Select(s => new TensorSpec(s.Present, s.ElementType, Optional: true,
                Doc: s.PresentDoc.Length > 0 ? s.PresentDoc : $"{s.Past} after the last token", Layout: s.BatchLayout)),
        ],
        Attributes,
        Doc: Doc);

    /// <summary>[batch, ..tail] of state <paramref name="state"/> for one call, written into <paramref name="shape"/> (no allocation).</summary>
    public Span<long> Shape(int state, TAttributes a, long batch, long keyDim, long valueDim, Span<long> shape)
    {
        shape[0] = batch;
        return shape[..(1 + States[state].Tail(a, keyDim, valueDim, shape[1..]))];
    }

    /// <summary>The dims after the batch, for graphs that declare the state (the swap).</summary>
    public long[] Tail(int state, TAttributes a, long keyDim, long valueDim)
    {
        Span<long> tail = stackalloc long[StateShapes.MaxRank];
        return tail[..States[state].Tail(a, keyDim, valueDim, tail)].ToArray();
    }

    /// <summary>Checks that the past of float state <paramref name="state"/> is float32 of its exact shape.</summary>
    public void RequirePast(in KernelContext context, int state, TAttributes a, long batch, long keyDim, long valueDim)
    {
        Span<long> buffer = stackalloc long[StateShapes.MaxRank];
        var expected = Shape(state, a, batch, keyDim, valueDim, buffer);
        var past = context.Input(PastInput(state));
        // The layout text is built only for the error: a decode step must not allocate for a check that passes.
        if (!StateChecks.HasShape(past, States[state].ElementType, expected))
        {
            StateChecks.RequireShape(past, States[state].Past, States[state].ElementType, expected, States[state].Layout(a));
        }
    }

    /// <summary>(input index, name) of the past of each state <paramref name="include"/> picks, for <see cref="StateChecks.AllOrNone"/>; build once.</summary>
    public (int Index, string Name)[] PastGroup(Func<StateSpec<TAttributes>, bool>? include = null) =>
        States.Select((s, i) => (PastInput(i), s.Past)).Where((_, i) => include?.Invoke(States[i]) ?? true).ToArray();

    /// <summary>The node attributes that spell <paramref name="a"/>, in the order of <see cref="Attributes"/>.</summary>
    public IReadOnlyList<(AttributeSpec Spec, object Value)> AttributeValues(TAttributes a)
    {
        var values = attributeValues(a);
        if (values.Length != Attributes.Count)
        {
            throw new InvalidOperationException($"{Name}'s contract spells {values.Length} attribute values for {Attributes.Count} attributes");
        }
        return Attributes.Zip(values, (spec, v) => (spec, spec.Kind switch
        {
            AttributeKind.Int when v is int or long => (object)Convert.ToInt64(v),
            AttributeKind.Float when v is float => v,
            AttributeKind.String when v is string => v,
            _ => throw new InvalidOperationException($"{Name}'s attribute '{spec.Name}' is {spec.Kind}, spelled as {v.GetType().Name}"),
        })).ToList();
    }
}
