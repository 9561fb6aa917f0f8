using Microsoft.ML.OnnxRuntime;
using OnnxAttention.Graphs.Onnx;
using OnnxAttention.Host.Sessions;
using OnnxAttention.Operators.Registration;
using OnnxAttention.Operators.Runtime;
using OrtApi = OnnxAttention.Operators.Interop.OrtApi;

namespace OnnxAttention.KernelForms;

/// <summary>How LinearAttention runs a call longer than one token.</summary>
public enum LinearForm
{
    /// <summary>The operator's own choice by rule, shape and length.</summary>
    Auto,
    /// <summary>One pass over the state per token (the decode step, repeated).</summary>
    PerToken,
    /// <summary>Four tokens per pass over the state where the rule allows it.</summary>
    TokenBlocks,
    /// <summary>Chunks of matrix products (<see cref="LinearAttentionChunked"/>) where the rule allows it (plain linear, no decay).</summary>
    Chunked,
}

/// <summary>How WindowAttention runs a call longer than one token.</summary>
public enum WindowForm
{
    /// <summary>By length and window (blocks for long calls with long windows).</summary>
    Auto,
    /// <summary>Each query against its window, token by token.</summary>
    PerToken,
    /// <summary>Blocks of queries through matrix products.</summary>
    Blocks,
}

/// <summary>Which per-(batch, KV head) item SummaryAttention, HybridAttention and SegmentAttention run.</summary>
public enum RecurrentForm
{
    /// <summary>The tuned item, blocks of queries for long calls where the operator has them (by length).</summary>
    Auto,
    /// <summary>The untuned item: one span primitive per cached row, as first written (kept here, not in the operators).</summary>
    Untuned,
    /// <summary>The tuned item, token by token even for long calls.</summary>
    PerToken,
    /// <summary>Blocks of queries through matrix products for every call longer than one token, where the operator has them.</summary>
    Blocks,
}

/// <summary>
/// Forces kernel forms in the sessions it opens, so bench-ops --forms can time them side by side in one process and
/// tests can check each against the references and the others. The sessions read the switch at every run, so one
/// session runs each form in turn; sessions opened any other way (production) always run the tuned forms. Change a
/// setting only between runs.
/// </summary>
public sealed unsafe class KernelFormSwitch
{
    private readonly Operators.Runtime.KernelForms _forms = new();

    /// <summary>What the operators read; tests reach it to check the sessions really run what it holds.</summary>
    internal Operators.Runtime.KernelForms Forms => _forms;
    private LinearForm _linear;
    private RecurrentForm _recurrent;

    public LinearForm Linear
    {
        get => _linear;
        set
        {
            _forms.LinearPrefill = value switch
            {
                LinearForm.PerToken => LinearPrefill.PerToken,
                LinearForm.TokenBlocks => LinearPrefill.TokenBlocks,
                _ => LinearPrefill.Auto,
            };
            _forms.LinearItem = value == LinearForm.Chunked ? &LinearAttentionChunked.RunItem : null;
            _linear = value;
        }
    }

    public WindowForm Window
    {
        get => (WindowForm)_forms.WindowPrefill;
        set => _forms.WindowPrefill = value switch
        {
            WindowForm.PerToken => WindowPrefill.PerToken,
            WindowForm.Blocks => WindowPrefill.Blocks,
            _ => WindowPrefill.Auto,
        };
    }

    public RecurrentForm Recurrent
    {
        get => _recurrent;
        set
        {
            _forms.RecurrentKernel = value switch
            {
                RecurrentForm.PerToken => RecurrentKernel.PerToken,
                RecurrentForm.Blocks => RecurrentKernel.Blocks,
                _ => RecurrentKernel.Auto,
            };
            var untuned = value == RecurrentForm.Untuned;
            _forms.SummaryItem = untuned ? &SummaryAttentionSpans.RunItem : null;
            _forms.HybridItem = untuned ? &HybridAttentionSpans.RunItem : null;
            _forms.SegmentItem = untuned ? &SegmentAttentionSpans.RunItem : null;
            _recurrent = value;
        }
    }

    /// <summary>Every setting back to <c>Auto</c> (the tuned forms).</summary>
    public void Reset()
    {
        Linear = LinearForm.Auto;
        Window = WindowForm.Auto;
        Recurrent = RecurrentForm.Auto;
    }

    /// <summary>A session over <paramref name="model"/> whose operators run the forms this switch sets.</summary>
    public OwnedSession CreateSession(ModelProto model, int intraOpThreads = 0) =>
        SessionFactory.Create(model, intraOpThreads, options => OperatorRegistry.AddTo(OrtApi.FromLoadedRuntime(), options.DangerousGetHandle(), _forms));
}
