using ScottPlot;
using SkiaSharp;

namespace MiniDeep.Experiments.Lab;

/// <summary>A named series of (x, y) points for a line plot.</summary>
public sealed record Series(string Label, double[] X, double[] Y);

/// <summary>
/// The lab's plots as PNG bytes: line and scatter plots through ScottPlot, image grids through
/// SkiaSharp (ScottPlot's renderer) so that every cell carries its own caption. Text needs a font:
/// Debian's fonts-dejavu-core, which CI installs.
/// </summary>
public static class Plots
{
    private static readonly Color[] Palette =
    [
        Colors.C0, Colors.C1, Colors.C2, Colors.C3, Colors.C4, Colors.C5, Colors.C6, Colors.C7, Colors.C8, Colors.C9,
    ];

    /// <summary>Lines with markers, one per series (markers only, a scatter plot, without <paramref name="lines"/>);
    /// <paramref name="logY"/> plots log10(y) and says so on the axis.</summary>
    public static byte[] Lines(string title, string xLabel, string yLabel, IReadOnlyList<Series> series, bool logY = false,
        (double Y, string Label)? horizontal = null, int width = 720, int height = 440, bool markers = true, Alignment legend = Alignment.UpperRight,
        bool lines = true, bool integerX = false)
    {
        var plt = new Plot();
        if (integerX)
        {
            // Counts (tasks, epochs): a tick at every whole number, none in between.
            var xs = series.SelectMany(s => s.X).Select(x => Math.Round(x)).Distinct().Order().ToArray();
            plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xs, xs.Select(x => x.ToString("0")).ToArray());
        }
        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            var ys = logY ? s.Y.Select(Math.Log10).ToArray() : s.Y;
            var sc = plt.Add.Scatter(s.X, ys, Palette[i % Palette.Length]);
            sc.LegendText = s.Label;
            sc.MarkerSize = markers ? 6 : 0;
            sc.LineWidth = lines ? 2 : 0;
        }
        if (horizontal is { } h)
        {
            var line = plt.Add.HorizontalLine(logY ? Math.Log10(h.Y) : h.Y);
            line.LinePattern = LinePattern.Dashed;
            line.Color = Colors.Gray;
            line.LegendText = h.Label;
        }
        Decorate(plt, title, xLabel, logY ? $"log10 {yLabel}" : yLabel, series.Count > 1 || horizontal is not null, legend);
        return plt.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>Grouped bars: one group per category, one bar per series in each group.</summary>
    public static byte[] Bars(string title, string yLabel, string[] categories, IReadOnlyList<(string Label, double[] Values)> series,
        int width = 720, int height = 440)
    {
        var plt = new Plot();
        int k = series.Count;
        double barWidth = 0.8 / k;
        for (int s = 0; s < k; s++)
        {
            var bars = new List<Bar>();
            for (int c = 0; c < categories.Length; c++)
                bars.Add(new Bar { Position = c + (s - (k - 1) / 2.0) * barWidth, Value = series[s].Values[c], Size = barWidth * 0.95, FillColor = Palette[s % Palette.Length] });
            var plot = plt.Add.Bars(bars);
            plot.LegendText = series[s].Label;
        }
        plt.Axes.Bottom.SetTicks(Enumerable.Range(0, categories.Length).Select(i => (double)i).ToArray(), categories);
        plt.Axes.Margins(bottom: 0);
        Decorate(plt, title, "", yLabel, legend: false);
        // The legend goes beside the bars: in a corner it covers the tallest one.
        if (k > 1) plt.ShowLegend(Edge.Right);
        return plt.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>A surface z[i, j] over the grid (xs[i], ys[j]) as a heat map with contour lines and a colour bar.</summary>
    public static byte[] Contour(string title, string xLabel, string yLabel, string zLabel, IReadOnlyList<double> xs, IReadOnlyList<double> ys, double[,] z,
        int width = 520, int height = 440, int lines = 12)
    {
        var plt = new Plot();
        var grid = new Coordinates3d[ys.Count, xs.Count];
        var cells = new double[ys.Count, xs.Count];
        for (int i = 0; i < xs.Count; i++)
            for (int j = 0; j < ys.Count; j++)
            {
                grid[j, i] = new Coordinates3d(xs[i], ys[j], z[i, j]);
                cells[ys.Count - 1 - j, i] = z[i, j];                                  // the heat map's row 0 is the top
            }
        var heat = plt.Add.Heatmap(cells);
        heat.Colormap = new ScottPlot.Colormaps.Viridis();
        // Cell centres on the grid points: the map reaches half a step beyond the first and last ones.
        double dx = (xs[^1] - xs[0]) / Math.Max(1, xs.Count - 1) / 2, dy = (ys[^1] - ys[0]) / Math.Max(1, ys.Count - 1) / 2;
        heat.Extent = new CoordinateRect(xs[0] - dx, xs[^1] + dx, ys[0] - dy, ys[^1] + dy);
        var contour = plt.Add.ContourLines(grid, lines);
        contour.LineColor = Colors.White.WithAlpha(0.8);
        var bar = plt.Add.ColorBar(heat);
        bar.Label = zLabel;
        Decorate(plt, title, xLabel, yLabel, legend: false);
        return plt.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>
    /// A matrix m[row, column] as coloured cells with each value written in its cell (accuracy matrices):
    /// rows top to bottom, columns left to right, values in [<paramref name="min"/>, <paramref name="max"/>].
    /// NaN cells stay blank; the colours run from <paramref name="min"/> (dark) to <paramref name="max"/> (yellow).
    /// </summary>
    public static byte[] Matrix(string title, string rowLabel, string columnLabel, double[,] m, double min = 0, double max = 1, string format = "F2",
        int width = 420, int height = 380)
    {
        int rows = m.GetLength(0), cols = m.GetLength(1);
        var plt = new Plot();
        var colormap = new ScottPlot.Colormaps.Viridis();
        // One filled rectangle per cell, row 0 at the top, and the value written in it.
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
            {
                if (double.IsNaN(m[r, c])) continue;
                double f = Math.Clamp((m[r, c] - min) / (max - min), 0, 1);
                var rect = plt.Add.Rectangle(c + 0.5, c + 1.5, rows - r - 0.5, rows - r + 0.5);
                rect.FillColor = colormap.GetColor(f);
                rect.LineColor = Colors.White;
                var text = plt.Add.Text(m[r, c].ToString(format, System.Globalization.CultureInfo.InvariantCulture), c + 1, rows - r);
                text.LabelAlignment = Alignment.MiddleCenter;
                text.LabelFontColor = f > 0.6 ? Colors.Black : Colors.White;
                text.LabelFontSize = 12;
                text.LabelFontName = "DejaVu Sans";
            }
        plt.Axes.SetLimits(0.5, cols + 0.5, 0.5, rows + 0.5);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(1, cols).Select(c => (double)c).ToArray(), Enumerable.Range(1, cols).Select(c => c.ToString()).ToArray());
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericManual(Enumerable.Range(1, rows).Select(r => (double)(rows + 1 - r)).ToArray(), Enumerable.Range(1, rows).Select(r => r.ToString()).ToArray());
        Decorate(plt, title, columnLabel, rowLabel, legend: false);
        return plt.GetImageBytes(width, height, ImageFormat.Png);
    }

    /// <summary>PNG images placed side by side on a white canvas, top-aligned.</summary>
    public static byte[] SideBySide(params byte[][] pngs)
    {
        var bitmaps = pngs.Select(SKBitmap.Decode).ToList();
        try
        {
            int width = bitmaps.Sum(b => b.Width), height = bitmaps.Max(b => b.Height);
            using var surface = SKSurface.Create(new SKImageInfo(width, height));
            surface.Canvas.Clear(SKColors.White);
            int x = 0;
            foreach (var b in bitmaps) { surface.Canvas.DrawBitmap(b, x, 0); x += b.Width; }
            using var image = surface.Snapshot();
            using var data = image.Encode(SKEncodedImageFormat.Png, 100);
            return data.ToArray();
        }
        finally { foreach (var b in bitmaps) b.Dispose(); }
    }

    private static void Decorate(Plot plt, string title, string xLabel, string yLabel, bool legend, Alignment where = Alignment.UpperRight)
    {
        plt.Font.Set("DejaVu Sans");
        plt.Title(title);
        plt.XLabel(xLabel);
        plt.YLabel(yLabel);
        if (legend) plt.ShowLegend(where);
    }

    /// <summary>How a grid cell's values map to gray.</summary>
    public enum CellScale
    {
        /// <summary>0 is black, 1 is white (images).</summary>
        Unit,
        /// <summary>0 is mid-gray, the cell's largest |value| is black or white (perturbations).</summary>
        Signed,
    }

    /// <summary>A cell of an image grid: square pixels, a scale, and up to two caption lines.</summary>
    public sealed record Cell(float[] Pixels, string Caption, CellScale Scale = CellScale.Unit, string Caption2 = "");

    /// <summary>Images in a grid with captions under each, and a title on top.</summary>
    public static byte[] ImageGrid(string title, IReadOnlyList<Cell> cells, int columns, int zoom = 3, IReadOnlyList<string>? rowLabels = null, int minCellWidth = 96)
    {
        int side = (int)Math.Round(Math.Sqrt(cells[0].Pixels.Length));
        int cellW = Math.Max(side * zoom, minCellWidth) + 8, imgH = side * zoom, cellH = imgH + 34;
        int labelW = rowLabels is null ? 0 : 110;
        int rows = (cells.Count + columns - 1) / columns;
        int width = labelW + columns * cellW + 8, height = 36 + rows * cellH + 4;
        using var surface = SKSurface.Create(new SKImageInfo(width, height));
        var canvas = surface.Canvas;
        canvas.Clear(SKColors.White);
        using var typeface = SKTypeface.FromFamilyName("DejaVu Sans") ?? SKTypeface.Default;
        using var titleFont = new SKFont(typeface, 15);
        using var font = new SKFont(typeface, 11);
        using var ink = new SKPaint { Color = SKColors.Black, IsAntialias = true };
        canvas.DrawText(title, width / 2f, 22, SKTextAlign.Center, titleFont, ink);
        using var px = new SKPaint();
        for (int i = 0; i < cells.Count; i++)
        {
            int r = i / columns, c = i % columns;
            float x0 = labelW + 4 + c * cellW + (cellW - imgH) / 2f, y0 = 36 + r * cellH;
            var cell = cells[i];
            float scale = cell.Scale == CellScale.Signed ? Math.Max(cell.Pixels.Max(Math.Abs), 1e-12f) : 1;
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                {
                    float v = cell.Pixels[y * side + x];
                    float g = cell.Scale == CellScale.Signed ? 0.5f + 0.5f * v / scale : v;
                    byte b = (byte)Math.Clamp((int)Math.Round(255 * g), 0, 255);
                    px.Color = new SKColor(b, b, b);
                    canvas.DrawRect(x0 + x * zoom, y0 + y * zoom, zoom, zoom, px);
                }
            float cx = labelW + 4 + c * cellW + cellW / 2f;
            canvas.DrawText(cell.Caption, cx, y0 + imgH + 13, SKTextAlign.Center, font, ink);
            if (cell.Caption2.Length > 0) canvas.DrawText(cell.Caption2, cx, y0 + imgH + 26, SKTextAlign.Center, font, ink);
            if (rowLabels is not null && c == 0 && r < rowLabels.Count)
                canvas.DrawText(rowLabels[r], 6, y0 + imgH / 2f + 4, SKTextAlign.Left, font, ink);
        }
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }
}
