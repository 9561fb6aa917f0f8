// The feature maps phi of LinearAttention (docs/operators/LinearAttention.md, "Feature maps"). NOT RUN ON A GPU YET.
//
// Defines read here:
//   FEATURE_MAP  0 elu_plus_one, 1 relu, 2 identity, 3 squared_relu, 4 l2norm (the order of the C# FeatureMap enum).
#pragma once
#include "onnx_attention_common.cuh"

#define FM_ELU_PLUS_ONE 0
#define FM_RELU 1
#define FM_IDENTITY 2
#define FM_SQUARED_RELU 3
#define FM_L2NORM 4

#ifndef FEATURE_MAP
#error "FEATURE_MAP must be defined: 0 elu_plus_one, 1 relu, 2 identity, 3 squared_relu, 4 l2norm"
#endif
#if FEATURE_MAP < 0 || FEATURE_MAP > 4
#error "FEATURE_MAP must be in 0..4"
#endif

// The l2norm map's epsilon under the square root (FeatureMaps.L2NormEpsilon on the CPU).
#define OA_L2NORM_EPSILON 1e-6f

namespace oa {

#if FEATURE_MAP != FM_L2NORM
// phi at one point, for the element-wise maps; x is already scaled (queries: scale * q, keys: k).
__device__ __forceinline__ float phi_point(float x)
{
#if FEATURE_MAP == FM_ELU_PLUS_ONE
    return x > 0.0f ? x + 1.0f : expf(x);
#elif FEATURE_MAP == FM_RELU
    return fmaxf(x, 0.0f);
#elif FEATURE_MAP == FM_IDENTITY
    return x;
#else
    const float r = fmaxf(x, 0.0f);
    return r * r;
#endif
}
#endif

// phi of one head vector held by the Width lanes of an aligned lane group, PerLane elements a lane, zeros past
// the vector's end (those become phi(0), which is 1 for elu_plus_one: callers store only real elements). Element-wise maps: phi(scale * x). l2norm: scale * x / sqrt(|x|^2 + 1e-6), the scale after
// the normalisation where it would otherwise cancel out. Keys pass scale = 1.
template <int PerLane, int Width = 32>
__device__ __forceinline__ void phi_vector(float (&x)[PerLane], float scale)
{
#if FEATURE_MAP == FM_L2NORM
    float sum_of_squares = 0.0f;
#pragma unroll
    for (int m = 0; m < PerLane; ++m) {
        sum_of_squares += x[m] * x[m];
    }
    sum_of_squares = group_sum<Width>(sum_of_squares);
    const float factor = scale / sqrtf(sum_of_squares + OA_L2NORM_EPSILON);
#pragma unroll
    for (int m = 0; m < PerLane; ++m) {
        x[m] *= factor;
    }
#else
#pragma unroll
    for (int m = 0; m < PerLane; ++m) {
        x[m] = phi_point(scale * x[m]);
    }
#endif
}

}  // namespace oa
