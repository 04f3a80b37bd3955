namespace MiniDeep.Nn;

/// <summary>Named initialization schemes (see <see cref="Init.Apply"/>).</summary>
public enum InitScheme
{
    /// <summary>U(-scale, scale).</summary>
    Uniform,
    /// <summary>N(0, scale²).</summary>
    Normal,
    /// <summary>Glorot &amp; Bengio 2010: U(±gain·√(6/(fan_in + fan_out))).</summary>
    XavierUniform,
    /// <summary>Glorot &amp; Bengio 2010: N(0, gain²·2/(fan_in + fan_out)).</summary>
    XavierNormal,
    /// <summary>He et al. 2015: U(±gain·√(3/fan)), gain √2 for ReLU.</summary>
    KaimingUniform,
    /// <summary>He et al. 2015: N(0, gain²/fan), gain √2 for ReLU.</summary>
    KaimingNormal,
    /// <summary>LeCun et al. 1998: N(0, 1/fan_in).</summary>
    LeCunNormal,
    /// <summary>LeCun et al. 1998: U(±√(3/fan_in)).</summary>
    LeCunUniform,
    /// <summary>All zeros.</summary>
    Zeros,
}

/// <summary>Which fan Kaiming initialization preserves: the forward signal (fan-in) or the backward gradient (fan-out).</summary>
public enum FanMode
{
    /// <summary>Preserve the variance of activations in the forward pass.</summary>
    FanIn,
    /// <summary>Preserve the variance of gradients in the backward pass.</summary>
    FanOut,
}

/// <summary>Weight initialization. Each method replaces a tensor's values in place from the given
/// generator and returns the tensor. Fans follow PyTorch: for a weight (out, in, k...), fan_in =
/// in·∏k and fan_out = out·∏k.</summary>
public static class Init
{
    /// <summary>(fan_in, fan_out) of a weight of shape (out, in, kernel...).</summary>
    public static (int FanIn, int FanOut) Fans(Tensor weight)
    {
        if (weight.Rank < 2)
            throw new ArgumentException($"Init: fans need a weight of rank ≥ 2, got shape {weight.Shape}");
        int receptive = 1;
        for (int d = 2; d < weight.Rank; d++) receptive *= weight.Size(d);
        return (weight.Size(1) * receptive, weight.Size(0) * receptive);
    }

    // A fan of 0 divides by zero (an infinite bound) and a negative gain flips the interval; both are
    // refused in the name of the scheme that was called.
    private static (int FanIn, int FanOut) CheckedFans(string scheme, Tensor weight, double gain)
    {
        var (fi, fo) = Fans(weight);
        if (fi == 0 || fo == 0) throw new ArgumentException($"Init.{scheme}: the weight {weight.Shape} has fan_in {fi} and fan_out {fo}; both must be positive");
        Checks.NonNegative(gain, "gain", $"Init.{scheme}");
        return (fi, fo);
    }

    /// <summary>The gain recommended for a nonlinearity (PyTorch's calculate_gain): relu √2, tanh 5/3,
    /// leaky_relu √(2/(1+slope²)), linear/sigmoid 1, selu 3/4.</summary>
    public static double Gain(string nonlinearity, double slope = 0.01) => nonlinearity.ToLowerInvariant() switch
    {
        "linear" or "identity" or "sigmoid" or "conv2d" => 1,
        "relu" => Math.Sqrt(2),
        "tanh" => 5.0 / 3,
        "leaky_relu" => Math.Sqrt(2 / (1 + slope * slope)),
        "selu" => 0.75,
        _ => throw new ArgumentException($"Init.Gain: unknown nonlinearity '{nonlinearity}'"),
    };

    private static Tensor Fill(Tensor t, Tensor values)
    {
        using (Autograd.NoGrad()) t.CopyFrom(values);
        return t;
    }

    /// <summary>U(low, high).</summary>
    public static Tensor Uniform(Tensor t, double low, double high, Generator? g = null) =>
        Fill(t, Tensor.Rand(t.Shape, g, low, high, t.DType, t.Device));

    /// <summary>N(mean, std²).</summary>
    public static Tensor Normal(Tensor t, double mean, double std, Generator? g = null) =>
        Fill(t, Tensor.Randn(t.Shape, g, mean, std, t.DType, t.Device));

    /// <summary>Glorot uniform.</summary>
    public static Tensor XavierUniform(Tensor t, double gain = 1, Generator? g = null)
    {
        var (fi, fo) = CheckedFans("XavierUniform", t, gain);
        double a = gain * Math.Sqrt(6.0 / (fi + fo));
        return Uniform(t, -a, a, g);
    }

    /// <summary>Glorot normal.</summary>
    public static Tensor XavierNormal(Tensor t, double gain = 1, Generator? g = null)
    {
        var (fi, fo) = CheckedFans("XavierNormal", t, gain);
        return Normal(t, 0, gain * Math.Sqrt(2.0 / (fi + fo)), g);
    }

    /// <summary>He uniform: bound gain·√(3/fan).</summary>
    public static Tensor KaimingUniform(Tensor t, double gain = 1.4142135623730951, FanMode mode = FanMode.FanIn, Generator? g = null)
    {
        var (fi, fo) = CheckedFans("KaimingUniform", t, gain);
        double bound = gain * Math.Sqrt(3.0 / (mode == FanMode.FanIn ? fi : fo));
        return Uniform(t, -bound, bound, g);
    }

    /// <summary>He normal: std gain/√fan.</summary>
    public static Tensor KaimingNormal(Tensor t, double gain = 1.4142135623730951, FanMode mode = FanMode.FanIn, Generator? g = null)
    {
        var (fi, fo) = CheckedFans("KaimingNormal", t, gain);
        return Normal(t, 0, gain / Math.Sqrt(mode == FanMode.FanIn ? fi : fo), g);
    }

    /// <summary>LeCun normal: std 1/√fan_in.</summary>
    public static Tensor LeCunNormal(Tensor t, Generator? g = null) => KaimingNormal(t, 1, FanMode.FanIn, g);

    /// <summary>LeCun uniform: bound √(3/fan_in).</summary>
    public static Tensor LeCunUniform(Tensor t, Generator? g = null) => KaimingUniform(t, 1, FanMode.FanIn, g);

    /// <summary>Applies a scheme by name. <paramref name="scale"/> is the bound (Uniform) or std (Normal);
    /// <paramref name="gain"/> applies to the Xavier and Kaiming schemes.</summary>
    public static Tensor Apply(InitScheme scheme, Tensor t, Generator? g = null, double scale = 0.01, double gain = 1, FanMode mode = FanMode.FanIn) => scheme switch
    {
        InitScheme.Uniform => Uniform(t, -scale, scale, g),
        InitScheme.Normal => Normal(t, 0, scale, g),
        InitScheme.XavierUniform => XavierUniform(t, gain, g),
        InitScheme.XavierNormal => XavierNormal(t, gain, g),
        InitScheme.KaimingUniform => KaimingUniform(t, gain, mode, g),
        InitScheme.KaimingNormal => KaimingNormal(t, gain, mode, g),
        InitScheme.LeCunNormal => LeCunNormal(t, g),
        InitScheme.LeCunUniform => LeCunUniform(t, g),
        _ => Fill(t, Tensor.ZerosLike(t)),
    };
}
