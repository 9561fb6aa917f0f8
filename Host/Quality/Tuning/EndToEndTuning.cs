namespace OnnxAttention.Host.Quality.Tuning;

/// <summary>
/// LoLCATs' second stage: after the plan is chosen, every layer's trainable numbers are tuned together against the
/// original model's next-token distributions on the calibration ids (mean KL(original ‖ tuned) over all positions,
/// Adam, full batch), so the layers are judged by what they do to the final prediction rather than one by one.
/// The numbers with the least loss seen are kept.
/// </summary>
public static class EndToEndTuning
{
    /// <summary>Where tuning started and ended: mean KL over all positions, and over the positions from the measured one on.</summary>
    public sealed record Result(double LossBefore, double KlFromBefore, double LossAfter, double KlFromAfter, int BestStep);

    /// <summary>Next-token probabilities [rows, T, vocab] from logits, each position's softmax.</summary>
    public static float[] Probabilities(float[] logits, int vocab)
    {
        var p = new float[logits.Length];
        for (var at = 0; at < logits.Length; at += vocab)
        {
            var z = logits.AsSpan(at, vocab);
            var max = System.Numerics.Tensors.TensorPrimitives.Max(z);
            var sum = 0.0;
            for (var i = 0; i < vocab; i++) sum += Math.Exp(z[i] - max);
            for (var i = 0; i < vocab; i++) p[at + i] = (float)(Math.Exp(z[i] - max) / sum);
        }
        return p;
    }

    /// <summary>Adam (rate decaying along a cosine to a tenth) for <paramref name="steps"/> steps from the model's current numbers; leaves the best ones in the model.</summary>
    /// <param name="progress">after each step: the step, the loss before it and the KL from <paramref name="from"/> on</param>
    public static Result Tune(EndToEndModel model, long[] ids, int rows, float[] teacher, int from, int steps, float rate,
        Action<int, double, double>? progress = null, CancellationToken cancel = default)
    {
        if (steps < 0) throw new ArgumentException($"steps must be >= 0, got {steps}");
        if (!(rate > 0) || !float.IsFinite(rate)) throw new ArgumentException($"the learning rate must be positive, got {rate}");
        var n = model.ParameterCount;
        var p = model.GetParameters();
        var rates = model.Parameters.SelectMany(q => Enumerable.Repeat(rate * q.Rate, q.Value.Length)).ToArray();
        var gradient = new float[n];
        var first = new float[n];
        var second = new float[n];
        const float beta1 = 0.9f, beta2 = 0.999f;
        var start = model.Loss(ids, rows, teacher, from, gradient);
        var best = (Loss: start.Kl, From: start.KlFrom, Step: 0, Parameters: p.ToArray());
        var current = start;
        for (var step = 1; step <= steps; step++)
        {
            cancel.ThrowIfCancellationRequested();
            var correction1 = 1 - MathF.Pow(beta1, step);
            var correction2 = 1 - MathF.Pow(beta2, step);
            // Cosine decay to a tenth: full-batch Adam at a constant rate starts to climb again once near a minimum.
            var decay = 0.1f + 0.9f * 0.5f * (1 + MathF.Cos(MathF.PI * (step - 1) / steps));
            for (var i = 0; i < n; i++)
            {
                first[i] = beta1 * first[i] + (1 - beta1) * gradient[i];
                second[i] = beta2 * second[i] + (1 - beta2) * gradient[i] * gradient[i];
                p[i] -= decay * rates[i] * (first[i] / correction1) / (MathF.Sqrt(second[i] / correction2) + 1e-8f);
            }
            model.SetParameters(p);
            current = model.Loss(ids, rows, teacher, from, gradient);
            if (double.IsFinite(current.Kl) && current.Kl < best.Loss) best = (current.Kl, current.KlFrom, step, p.ToArray());
            progress?.Invoke(step, current.Kl, current.KlFrom);
        }
        model.SetParameters(best.Parameters);
        return new Result(start.Kl, start.KlFrom, best.Loss, best.From, best.Step);
    }
}
