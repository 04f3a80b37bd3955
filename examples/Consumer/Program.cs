using MiniDeep;
using MiniDeep.Gpu;
using MiniDeep.IO;
using MiniDeep.Nn;
using MiniDeep.Optim;

// What a user of the packages does: build a model, train it, save it, load it back, export it, and run the same
// model code on the GPU backend (ILGPU's CPU accelerator when there is no GPU).
var g = new Generator(42);
var x = Tensor.Randn(new Shape(256, 2), g);
var y = (x.Narrow(1, 0, 1) * x.Narrow(1, 1, 1)).Reshape(256) > 0;     // XOR-like quadrants
var labels = y.To(DType.Int32);
var model = new Sequential(new Linear(2, 32, generator: g), Activations.ReLU(), new Linear(32, 2, generator: g));
var opt = new Adam(model.Parameters(), 0.05);
float loss = 0;
for (int step = 0; step < 300; step++)
{
    opt.ZeroGrad();
    var l = Losses.CrossEntropy(model.Forward(x), labels);
    l.Backward();
    opt.Step();
    loss = (float)l.Item();
}
double accuracy = (model.Forward(x).ArgMax(1).Reshape(256) == labels).To(DType.Float32).Mean().Item();
Console.WriteLine($"trained: loss {loss:F3}, accuracy {accuracy:P1}");

var path = Path.Combine(Path.GetTempPath(), $"consumer-{Environment.ProcessId}.safetensors");
SafeTensors.Save(path, model);
var copy = new Sequential(new Linear(2, 32), Activations.ReLU(), new Linear(32, 2));
SafeTensors.Load(path, copy);
File.Delete(path);
bool same = model.Forward(x).ToArray<float>().SequenceEqual(copy.Forward(x).ToArray<float>());
Console.WriteLine($"saved and loaded: {(same ? "same outputs" : "DIFFERENT outputs")}");

var onnx = Onnx.ExportBytes(model, new Shape(1, 2));
Console.WriteLine($"exported to ONNX opset {Onnx.Opset}: {onnx.Length:N0} bytes");

var device = GpuDevices.Get(GpuDevices.Available().Any(d => d.StartsWith("cuda")) ? "cuda" : "ilgpu-cpu");
copy.To(device);
var onDevice = copy.Forward(x.To(device)).To(Device.Cpu).ToArray<float>();
var onCpu = model.Forward(x).ToArray<float>();
double maxDiff = onCpu.Zip(onDevice, (a, b) => Math.Abs(a - b)).Max();
Console.WriteLine($"on {device}: largest difference from the CPU {maxDiff:G3}");
return accuracy > 0.9 && same && maxDiff < 1e-4 ? 0 : 1;
