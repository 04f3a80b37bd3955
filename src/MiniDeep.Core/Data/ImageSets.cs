namespace MiniDeep.Data;

/// <summary>No data directory holds the files asked for. The message names every place searched.</summary>
public sealed class DataNotFoundException(string message) : Exception(message);

/// <summary>A train/test pair of image classification sets: images (N, 1, H, W) in [0, 1], int32 labels (N).</summary>
public sealed record ImageClassification(string Name, TensorDataset Train, TensorDataset Test, int Classes, string Source)
{
    /// <summary>The same data with inputs shifted and scaled by the training set's pixel mean and
    /// standard deviation (the test set with the same two numbers, so nothing leaks from it).</summary>
    public ImageClassification Standardized()
    {
        double mean = Train.X.Mean().Item(), std = Train.X.Std().Item();
        TensorDataset Apply(TensorDataset t) => new((t.X - mean) / std, t.Y);
        return this with { Train = Apply(Train), Test = Apply(Test) };
    }

    /// <summary>Class names, where the data set has them.</summary>
    public IReadOnlyList<string> ClassNames { get; init; } = Enumerable.Range(0, Classes).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
}

/// <summary>Loads MNIST-layout data sets (MNIST, Fashion-MNIST) from IDX files.</summary>
public static class MnistFormat
{
    /// <summary>The default location of Debian's dataset-fashion-mnist package.</summary>
    public const string DebianFashionMnist = "/usr/share/datasets/fashion-mnist";

    /// <summary>Fashion-MNIST's classes.</summary>
    public static readonly string[] FashionClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private static readonly string[] Files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

    /// <summary>
    /// The directory to load from: <paramref name="explicitDir"/> (--data) if given, else the
    /// MINIDEEP_DATA environment variable, else Debian's package location. Null when none of them
    /// holds the four files; <paramref name="searched"/> lists where it looked.
    /// </summary>
    public static string? Locate(string? explicitDir, out List<string> searched)
    {
        searched = [];
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(explicitDir)) candidates.Add(explicitDir);
        else
        {
            var env = Environment.GetEnvironmentVariable("MINIDEEP_DATA");
            if (!string.IsNullOrEmpty(env)) candidates.Add(env);
            candidates.Add(DebianFashionMnist);
        }
        foreach (var dir in candidates)
        {
            searched.Add(dir);
            if (Files.All(f => FindFile(dir, f) is not null)) return dir;
        }
        return null;
    }

    private static string? FindFile(string dir, string stem)
    {
        foreach (var name in new[] { stem, stem + ".gz" })
        {
            var p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Loads the four IDX files from a directory (plain or .gz), checking that they fit together.</summary>
    public static ImageClassification Load(string dir, string name = "fashion-mnist")
    {
        string Need(string stem) => FindFile(dir, stem)
            ?? throw new DataNotFoundException($"{Path.Combine(dir, stem)}(.gz) not found");
        var train = LoadPair(Need(Files[0]), Need(Files[1]));
        var test = LoadPair(Need(Files[2]), Need(Files[3]));
        return new ImageClassification(name, train, test, 10, dir)
        {
            ClassNames = name == "fashion-mnist" ? FashionClasses : Enumerable.Range(0, 10).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray(),
        };
    }

    /// <summary>Loads Fashion-MNIST from --data, MINIDEEP_DATA or Debian's location, or throws naming where it looked.</summary>
    public static ImageClassification LoadFashionMnist(string? explicitDir = null)
    {
        var dir = Locate(explicitDir, out var searched)
            ?? throw new DataNotFoundException(
                "Fashion-MNIST not found: looked for train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] " +
                $"and t10k-labels-idx1-ubyte[.gz] in {string.Join(", ", searched)}. Install it with 'apt-get install dataset-fashion-mnist', " +
                "set MINIDEEP_DATA, or pass --data DIR.");
        return Load(dir);
    }

    /// <summary>Images (N, rows, cols) of unsigned bytes and labels (N), as (N, 1, rows, cols) floats in [0, 1] and int32 labels.</summary>
    public static TensorDataset LoadPair(string imagesPath, string labelsPath)
    {
        var images = Idx.Read(imagesPath);
        var labels = Idx.Read(labelsPath);
        if (images.Shape.Length != 3)
            throw new IdxFormatException(imagesPath, $"images must have 3 dimensions (count, rows, columns), found {images.Shape.Length}");
        if (labels.Shape.Length != 1)
            throw new IdxFormatException(labelsPath, $"labels must have 1 dimension, found {labels.Shape.Length}");
        if (images.Shape[0] != labels.Shape[0])
            throw new IdxFormatException(imagesPath, $"{images.Shape[0]} images but {labels.Shape[0]} labels in {labelsPath}");
        if (images.TypeCode != 0x08 || labels.TypeCode != 0x08)
            throw new IdxFormatException(images.TypeCode != 0x08 ? imagesPath : labelsPath, "expected unsigned-byte (0x08) data");
        var x = images.Values;
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, 1f / 255, x);
        var y = labels.Values.Select(v => (int)v).ToArray();
        var (n, h, w) = (images.Shape[0], images.Shape[1], images.Shape[2]);
        return new TensorDataset(Tensor.Wrap(x, [n, 1, h, w]), Tensor.Wrap(y, [n]));
    }
}
