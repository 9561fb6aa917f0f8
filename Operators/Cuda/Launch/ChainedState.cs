namespace OnnxAttention.Operators.Cuda.Launch;

/// <summary>
/// One state tensor across the sequential launches of a call (one per token for the decode-only kernels): step t
/// reads <see cref="Source"/>(t) and writes <see cref="Destination"/>(t), step 0 reads the past input (0: absent, the
/// kernel's zeros) and the last step writes the present output. The same rule for every operator:
/// <list type="bullet">
/// <item>a kernel that may update this tensor in place (<c>mayAlias</c>) works in the final buffer throughout;</item>
/// <item>otherwise steps alternate between the final buffer and a spare one, so no step reads what it writes;</item>
/// <item>a past input bound to the same memory as the present output (a host updating state in place, as the CPU
/// operators allow) is first copied aside when the first step would otherwise read and write it;</item>
/// <item>an output the node leaves out becomes scratch when a kernel needs somewhere to write (<c>required</c>,
/// or more than one step); with no steps (an empty sequence) the output receives a copy of the past, or zeros.</item>
/// </list>
/// </summary>
public sealed class ChainedState
{
    private readonly nint _source0;
    private readonly nint _final;
    private readonly nint _spare;
    private readonly bool _inPlace;
    private readonly int _steps;

    public ChainedState(DeviceScratch scratch, nint past, nint output, long bytes, int steps, bool mayAlias, bool required)
    {
        _steps = steps;
        _inPlace = mayAlias;
        _final = output != 0 || (!required && steps <= 1) ? output : scratch.Allocate(bytes);
        if (steps == 0)
        {
            if (_final != 0 && _final != past)
            {
                if (past != 0)
                {
                    scratch.Launcher.Copy(_final, past, bytes);
                }
                else
                {
                    scratch.Launcher.Zero(_final, bytes);
                }
            }
            return;
        }
        _spare = !mayAlias && steps > 1 ? scratch.Allocate(bytes) : 0;
        _source0 = past;
        if (past != 0 && !mayAlias && past == Destination(0))
        {
            _source0 = scratch.Allocate(bytes);
            scratch.Launcher.Copy(_source0, past, bytes);
        }
    }

    /// <summary>The buffer step <paramref name="step"/> writes (0 only for an optional output left out, one step).</summary>
    public nint Destination(int step)
    {
        Check(step);
        return _inPlace || (_steps - 1 - step) % 2 == 0 ? _final : _spare;
    }

    /// <summary>The buffer step <paramref name="step"/> reads (0 at step 0 when there is no past: zeros).</summary>
    public nint Source(int step)
    {
        Check(step);
        return step == 0 ? _source0 : Destination(step - 1);
    }

    private void Check(int step)
    {
        if (step < 0 || step >= _steps)
        {
            throw new ArgumentOutOfRangeException(nameof(step), step, $"steps are 0 .. {_steps - 1}");
        }
    }
}
