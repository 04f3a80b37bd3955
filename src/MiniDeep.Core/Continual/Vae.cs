using MiniDeep.Nn;

namespace MiniDeep.Continual;

/// <summary>
/// A small variational autoencoder for images in [0, 1] (Kingma &amp; Welling 2014): an MLP encoder to
/// the mean and log-variance of a Gaussian code, an MLP decoder to per-pixel Bernoulli logits. It is the
/// generator of generative replay ("dreaming", Shin, Lee, Kim &amp; Kim 2017): after each task, samples
/// from it, labelled by the previous network, stand in for the earlier tasks' data.
/// </summary>
public sealed class Vae : Module
{
    private readonly Linear _enc, _mu, _logVar, _dec, _out;
    private readonly int[] _imageShape;

    /// <summary>A VAE for images of the given shape (e.g. [1, 28, 28]), with one hidden layer each way.</summary>
    public Vae(int[] imageShape, int hidden, int latent, Generator generator)
    {
        if (imageShape.Length == 0 || imageShape.Any(d => d < 1))
            throw new ArgumentException($"Vae: the image shape must have positive sizes, got [{string.Join(", ", imageShape)}]");
        if (hidden < 1) throw new ArgumentOutOfRangeException(nameof(hidden), $"Vae: at least one hidden unit, got {hidden}");
        if (latent < 1) throw new ArgumentOutOfRangeException(nameof(latent), $"Vae: at least one latent dimension, got {latent}");
        _imageShape = (int[])imageShape.Clone();
        int pixels = imageShape.Aggregate(1, (a, b) => a * b);
        Latent = latent;
        _enc = RegisterModule("enc", new Linear(pixels, hidden, generator: generator));
        _mu = RegisterModule("mu", new Linear(hidden, latent, generator: generator));
        _logVar = RegisterModule("log_var", new Linear(hidden, latent, generator: generator));
        _dec = RegisterModule("dec", new Linear(latent, hidden, generator: generator));
        _out = RegisterModule("out", new Linear(hidden, pixels, generator: generator));
    }

    /// <summary>Size of the code.</summary>
    public int Latent { get; }

    /// <summary>Mean and log-variance of the code of each image.</summary>
    public (Tensor Mu, Tensor LogVar) Encode(Tensor x)
    {
        var h = _enc.Forward(x.Reshape(x.Size(0), -1)).Relu();
        return (_mu.Forward(h), _logVar.Forward(h));
    }

    /// <summary>Per-pixel logits of the images the codes decode to, shaped like the inputs.</summary>
    public Tensor DecodeLogits(Tensor z) => _out.Forward(_dec.Forward(z).Relu()).Reshape([z.Size(0), .. _imageShape]);

    /// <summary>The reconstruction logits of <paramref name="x"/> through the code's mean (no sampling).</summary>
    protected override Tensor ForwardImpl(Tensor x) => DecodeLogits(Encode(x).Mu);

    /// <summary>
    /// The negative evidence lower bound per image, averaged over the batch: the Bernoulli reconstruction
    /// loss summed over pixels plus KL(q(z|x) ‖ N(0, I)) = −½ Σ (1 + log σ² − μ² − σ²). The code is
    /// sampled by the reparameterization z = μ + σ·ε, so the loss is differentiable in μ and σ.
    /// </summary>
    public Tensor Loss(Tensor x, Generator generator)
    {
        if (x.Rank != _imageShape.Length + 1 || !x.Dims.AsSpan(1).SequenceEqual(_imageShape))
            throw new ShapeMismatchException("Vae.Loss", $"Vae.Loss: images must be (n, {string.Join(", ", _imageShape)}), got {x.Shape}");
        // The reconstruction term is a Bernoulli likelihood: standardized or 0–255 pixels give a number that
        // is no likelihood at all, with no error from the loss itself.
        if (x.Numel > 0)
        {
            double min = x.Min().Item(), max = x.Max().Item();
            if (!(min >= 0 && max <= 1))
                throw new ArgumentOutOfRangeException(nameof(x), $"Vae.Loss: pixels must lie in [0, 1] (Bernoulli likelihood), got values in [{min}, {max}]");
        }
        var (mu, logVar) = Encode(x);
        var eps = Tensor.Randn(mu.Shape, generator, dtype: mu.DType);
        var z = mu + (logVar * 0.5).Exp() * eps;
        int n = x.Size(0);
        var reconstruction = Losses.BceWithLogits(DecodeLogits(z), x, Reduction.Sum) / n;
        var kl = ((logVar + 1) - mu * mu - logVar.Exp()).Sum() * (-0.5 / n);
        return reconstruction + kl;
    }

    /// <summary><paramref name="count"/> images decoded from codes drawn from N(0, I) (pixel probabilities).</summary>
    public Tensor Sample(int count, Generator generator)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"Vae.Sample: count must be non-negative, got {count}");
        using var _ = Autograd.NoGrad();
        return DecodeLogits(Tensor.Randn(new Shape(count, Latent), generator)).Sigmoid();
    }

    /// <summary>
    /// Dreams for generative replay: <paramref name="count"/> samples of <paramref name="generatorModel"/>
    /// labelled with <paramref name="solver"/>'s predicted classes.
    /// </summary>
    public static (Tensor X, Tensor Y) Dreams(Vae generatorModel, Module solver, int count, Generator generator)
    {
        var x = generatorModel.Sample(count, generator);
        using var _ = Autograd.NoGrad();
        bool training = solver.IsTraining;
        solver.Eval();
        var y = solver.Forward(x).ArgMax(1).To(DType.Int32);
        solver.Train(training);
        return (x, y);
    }
}
