namespace MiniDeep.Data;

/// <summary>
/// SynthDigits, the embedded default data set: 28×28 grayscale digits 0–9 drawn in code from a
/// stroke font (polylines and elliptic arcs in a unit box), bent by a smooth random warp, placed by
/// a random affine map (rotation, scale, shear, shift), drawn with a random stroke width and
/// intensity, overlaid with clutter strokes, sometimes cut by an occluding band, and noised. Image i of a split is a pure function of
/// (seed, split, i), so any subset can be regenerated exactly and generation can use every core.
/// No data file is involved.
/// </summary>
public static class SynthDigits
{
    /// <summary>Image side in pixels.</summary>
    public const int Size = 28;

    /// <summary>The standard split: 60,000 training and 10,000 test images.</summary>
    public static ImageClassification Load(ulong seed = 0, int trainCount = 60_000, int testCount = 10_000) =>
        new("synthdigits", Generate(seed, 0, trainCount), Generate(seed, 1, testCount), 10, "generated in code (SynthDigits)");

    /// <summary>Images (n, 1, 28, 28) in [0, 1] and labels (n) for one split; labels cycle 0..9 so every class has n/10 images.</summary>
    public static TensorDataset Generate(ulong seed, int split, int count)
    {
        if (count < 0 || count > int.MaxValue / (Size * Size))
            throw new ArgumentOutOfRangeException(nameof(count), $"SynthDigits.Generate: count must lie in [0, {int.MaxValue / (Size * Size):N0}], got {count}");
        var pixels = new float[count * Size * Size];
        var labels = new int[count];
        Parallelism.ForRange(count, 512, (s, e) =>
        {
            for (int i = s; i < e; i++)
            {
                labels[i] = i % 10;
                Render(labels[i], new Draws(seed, ((ulong)(uint)split << 40) | (uint)i), pixels.AsSpan(i * Size * Size, Size * Size));
            }
        });
        return new TensorDataset(Tensor.Wrap(pixels, [count, 1, Size, Size]), Tensor.Wrap(labels, [count]));
    }

    // ----- the stroke font: each digit is a few polylines in a unit box, y pointing down -----

    private static (double X, double Y)[] Arc(double cx, double cy, double rx, double ry, double fromDeg, double toDeg, int points = 14)
    {
        var p = new (double, double)[points];
        for (int k = 0; k < points; k++)
        {
            double a = (fromDeg + (toDeg - fromDeg) * k / (points - 1)) * Math.PI / 180;
            p[k] = (cx + rx * Math.Cos(a), cy + ry * Math.Sin(a));
        }
        return p;
    }

    private static readonly (double X, double Y)[][][] Glyphs =
    [
        /* 0 */ [Arc(0.5, 0.5, 0.28, 0.4, 0, 360, 24)],
        /* 1 */ [[(0.33, 0.27), (0.55, 0.1), (0.55, 0.9)], [(0.38, 0.9), (0.72, 0.9)]],
        /* 2 */ [[.. Arc(0.5, 0.32, 0.27, 0.22, 195, 380), (0.2, 0.9), (0.82, 0.9)]],
        /* 3 */ [Arc(0.47, 0.3, 0.25, 0.2, 200, 450), Arc(0.47, 0.7, 0.28, 0.21, 270, 520)],
        /* 4 */ [[(0.66, 0.9), (0.66, 0.1), (0.15, 0.66), (0.86, 0.66)]],
        /* 5 */ [[(0.78, 0.1), (0.3, 0.1), (0.27, 0.47)], Arc(0.48, 0.66, 0.28, 0.24, 222, 500)],
        /* 6 */ [[(0.72, 0.12), (0.45, 0.3), (0.3, 0.6)], Arc(0.5, 0.68, 0.22, 0.21, 180, 540, 20)],
        /* 7 */ [[(0.2, 0.1), (0.8, 0.1), (0.42, 0.9)]],
        /* 8 */ [Arc(0.5, 0.3, 0.22, 0.2, 0, 360, 18), Arc(0.5, 0.7, 0.26, 0.21, 0, 360, 20)],
        /* 9 */ [Arc(0.5, 0.32, 0.22, 0.22, 0, 360, 18), [(0.72, 0.32), (0.7, 0.6), (0.55, 0.9)]],
    ];

    /// <summary>Draws one digit into a 28×28 buffer.</summary>
    private static void Render(int digit, Draws r, Span<float> image)
    {
        image.Clear();
        // A smooth warp of the unit box (two low-frequency waves per axis), then an affine placement
        // of the 20×20-pixel glyph box in the 28×28 image, as MNIST centres its digits.
        double wa = r.Uniform(0, 0.08), wf = r.Uniform(2, 6), wp = r.Uniform(0, 2 * Math.PI);
        double wb = r.Uniform(0, 0.08), wg = r.Uniform(2, 6), wq = r.Uniform(0, 2 * Math.PI);
        double angle = r.Uniform(-0.45, 0.45), scale = r.Uniform(0.65, 1.1), aspect = r.Uniform(0.8, 1.2), shear = r.Uniform(-0.45, 0.45);
        double tx = r.Uniform(-4, 4), ty = r.Uniform(-4, 4);
        double cos = Math.Cos(angle), sin = Math.Sin(angle);
        double sx = 20 * scale * aspect, sy = 20 * scale / aspect;
        (double, double) Place((double X, double Y) p)
        {
            double x = p.X + wa * Math.Sin(wf * p.Y + wp) - 0.5;
            double y = p.Y + wb * Math.Sin(wg * p.X + wq) - 0.5;
            x += shear * y;
            double u = (cos * x - sin * y) * sx, v = (sin * x + cos * y) * sy;
            return (u + 14 + tx, v + 14 + ty);
        }

        double width = r.Uniform(1.0, 3.2), ink = r.Uniform(0.6, 1.0);
        foreach (var stroke in Glyphs[digit])
        {
            var prev = Place(stroke[0]);
            for (int k = 1; k < stroke.Length; k++)
            {
                var next = Place(stroke[k]);
                DrawSegment(image, prev, next, width, ink);
                prev = next;
            }
        }

        // Clutter: up to two short stray strokes, fainter than the digit.
        int clutter = (int)r.Uniform(0, 3);
        for (int c = 0; c < clutter; c++)
        {
            var a = (r.Uniform(2, 26), r.Uniform(2, 26));
            double len = r.Uniform(3, 9), dir = r.Uniform(0, 2 * Math.PI);
            DrawSegment(image, a, (a.Item1 + len * Math.Cos(dir), a.Item2 + len * Math.Sin(dir)), r.Uniform(0.8, 2), r.Uniform(0.2, 0.6));
        }

        // Pixel noise, uniform with standard deviation `noise`: four pixels per Philox block (a normal
        // per pixel costs a log and a cosine each and made generation three times slower).
        double noise = r.Uniform(0, 0.2) * Math.Sqrt(3);
        for (int p = 0; p < image.Length; p += 4)
        {
            var (w0, w1, w2, w3) = r.Block();
            image[p] = Noisy(image[p], w0, noise);
            image[p + 1] = Noisy(image[p + 1], w1, noise);
            image[p + 2] = Noisy(image[p + 2], w2, noise);
            image[p + 3] = Noisy(image[p + 3], w3, noise);
        }
    }

    private static float Noisy(float v, uint word, double amplitude) =>
        (float)Math.Clamp(v + amplitude * (word * (2.0 / 4294967296.0) - 1), 0, 1);


    // Anti-aliased thick segment: coverage falls off linearly over one pixel at the stroke's edge;
    // overlapping strokes take the maximum, not the sum, so joints do not glow.
    private static void DrawSegment(Span<float> image, (double X, double Y) a, (double X, double Y) b, double width, double ink)
    {
        double half = width / 2;
        int x0 = Math.Max(0, (int)Math.Floor(Math.Min(a.X, b.X) - half - 1)), x1 = Math.Min(Size - 1, (int)Math.Ceiling(Math.Max(a.X, b.X) + half + 1));
        int y0 = Math.Max(0, (int)Math.Floor(Math.Min(a.Y, b.Y) - half - 1)), y1 = Math.Min(Size - 1, (int)Math.Ceiling(Math.Max(a.Y, b.Y) + half + 1));
        double dx = b.X - a.X, dy = b.Y - a.Y, len2 = dx * dx + dy * dy;
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++)
            {
                double px = x + 0.5 - a.X, py = y + 0.5 - a.Y;
                double t = len2 == 0 ? 0 : Math.Clamp((px * dx + py * dy) / len2, 0, 1);
                double ex = px - t * dx, ey = py - t * dy, d2 = ex * ex + ey * ey;
                if (d2 >= (half + 0.5) * (half + 0.5)) continue;
                double coverage = Math.Clamp(half + 0.5 - Math.Sqrt(d2), 0, 1);
                float v = (float)(ink * coverage);
                ref float dst = ref image[y * Size + x];
                if (v > dst) dst = v;
            }
    }

    // Sequential draws from one Philox stream: the k-th draw of image i is Philox(seed, stream_i, k).
    private struct Draws(ulong seed, ulong stream)
    {
        private ulong _counter;
        public double Uniform(double lo, double hi) => lo + (hi - lo) * Philox.UniformDouble(seed, stream, _counter++);
        public (uint, uint, uint, uint) Block() => Philox.Block(seed, stream, _counter++);
    }
}
