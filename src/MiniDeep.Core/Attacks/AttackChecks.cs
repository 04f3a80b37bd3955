using MiniDeep.Nn;

namespace MiniDeep.Attacks;

// The input checks every attack shares. Each runs before the first step or query, so that a refused
// call costs no oracle budget and leaves the model as it was.
internal static class AttackChecks
{
    // Every attack clips its result to the box, so inputs outside it (standardized images against the
    // default [0, 1]) would come back clipped, moved by far more than the attack's budget, with no error.
    public static void Box(string op, Tensor x, double lo, double hi, string what = "inputs")
    {
        if (!(lo < hi)) throw new ArgumentException($"{op}: the box [lo, hi] = [{lo}, {hi}] is empty");
        if (x.Numel == 0) return;
        double min = x.Min().Item(), max = x.Max().Item();
        if (!(min >= lo && max <= hi))
            throw new ArgumentOutOfRangeException(nameof(x), $"{op}: {what} lie in [{min:G4}, {max:G4}], outside the box [{lo}, {hi}]; pass the data's range as lo and hi");
    }

    public static void Classes(string op, int[] classes, int classCount, string what)
    {
        for (int i = 0; i < classes.Length; i++)
            if ((uint)classes[i] >= (uint)classCount)
                throw new ArgumentOutOfRangeException(nameof(classes), $"{op}: {what} {classes[i]} of image {i} lies outside the model's {classCount} classes");
    }

    // The model's number of classes, from one image in eval mode (no state changes, nothing recorded).
    public static int ClassCount(Module model, Tensor x)
    {
        using var _ = Autograd.NoGrad();
        bool wasTraining = model.IsTraining;
        model.Eval();
        try { return model.Forward(x.Narrow(0, 0, 1)).Size(1); }
        finally { model.Train(wasTraining); }
    }
}
