using System.CommandLine;
using MiniDeep.Experiments;

var seed = new Option<ulong>("--seed") { Description = "Seed of the one generator everything draws from", DefaultValueFactory = _ => 0 };
var steps = new Option<int>("--steps") { Description = "Full-batch training steps", DefaultValueFactory = _ => 500 };
var json = new Option<string?>("--json") { Description = "Also write the result as JSON to this file" };

var demo = new Command("demo", "Train a small MLP on three interleaved spirals with raw tensors and autograd") { seed, steps, json };
demo.SetAction(parse =>
{
    int n = parse.GetValue(steps);
    if (n < 10) { Console.Error.WriteLine("--steps must be at least 10"); return 2; }
    var result = SpiralDemo.Run(parse.GetValue(seed), n, Console.Out);
    if (parse.GetValue(json) is { } path) SpiralDemo.WriteJson(result, path);
    return 0;
});

var root = new RootCommand("MiniDeep experiments: a deep-learning engine written from scratch, and the lab that tests what it can show") { demo };
return root.Parse(args).Invoke();
