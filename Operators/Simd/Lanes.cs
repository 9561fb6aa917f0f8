using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace OnnxAttention.Operators.Simd;

/// <summary>
/// The few vector operations the register-tiled kernels need, so one generic body serves every register width: the
/// JIT specialises a generic method per struct argument, so these calls compile to single instructions.
/// </summary>
internal unsafe interface ILanes<V> where V : struct
{
    static abstract int Count { get; }
    static abstract V Load(float* p);
    static abstract void Store(V v, float* p);
    static abstract V Broadcast(float x);
    static abstract V Multiply(V a, V b);
    static abstract V Add(V a, V b);
    /// <summary>a * b + c, fused.</summary>
    static abstract V MultiplyAdd(V a, V b, V c);
}

/// <summary>512-bit lanes (use only where <see cref="Vector512.IsHardwareAccelerated"/>).</summary>
internal readonly unsafe struct Wide : ILanes<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;
    public static Vector512<float> Load(float* p) => Vector512.Load(p);
    public static void Store(Vector512<float> v, float* p) => v.Store(p);
    public static Vector512<float> Broadcast(float x) => Vector512.Create(x);
    public static Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
}

/// <summary><see cref="Vector{T}"/> lanes: the platform's default width (256 bits on x64 even with AVX-512).</summary>
internal readonly unsafe struct Native : ILanes<Vector<float>>
{
    public static int Count => Vector<float>.Count;
    public static Vector<float> Load(float* p) => Vector.Load(p);
    public static void Store(Vector<float> v, float* p) => v.Store(p);
    public static Vector<float> Broadcast(float x) => new(x);
    public static Vector<float> Multiply(Vector<float> a, Vector<float> b) => a * b;
    public static Vector<float> Add(Vector<float> a, Vector<float> b) => a + b;
    public static Vector<float> MultiplyAdd(Vector<float> a, Vector<float> b, Vector<float> c) => Vector.FusedMultiplyAdd(a, b, c);
}

/// <summary>One float: the column tails of the same kernels, with the same fused rounding.</summary>
internal readonly unsafe struct Scalar : ILanes<float>
{
    public static int Count => 1;
    public static float Load(float* p) => *p;
    public static void Store(float v, float* p) => *p = v;
    public static float Broadcast(float x) => x;
    public static float Multiply(float a, float b) => a * b;
    public static float Add(float a, float b) => a + b;
    public static float MultiplyAdd(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
}

/// <summary>A compile-time integer for generic specialisation: the JIT folds <c>T.Value</c> to a constant.</summary>
internal interface IConstant
{
    static abstract int Value { get; }
}

internal readonly struct One : IConstant { public static int Value => 1; }
internal readonly struct Two : IConstant { public static int Value => 2; }
internal readonly struct Three : IConstant { public static int Value => 3; }
internal readonly struct Four : IConstant { public static int Value => 4; }
internal readonly struct Five : IConstant { public static int Value => 5; }
internal readonly struct Six : IConstant { public static int Value => 6; }
internal readonly struct Seven : IConstant { public static int Value => 7; }
internal readonly struct Eight : IConstant { public static int Value => 8; }

/// <summary>A compile-time switch for generic specialisation.</summary>
internal interface IFlag
{
    static abstract bool On { get; }
}

internal readonly struct Yes : IFlag { public static bool On => true; }
internal readonly struct No : IFlag { public static bool On => false; }
