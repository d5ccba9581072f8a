import ArgumentParser
import Foundation
import GenStudio
import GenTensor

/// `gen bench WORKLOAD`: gen's side of the reference benchmarks in ../shared/bench.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time gen on the reference workloads (compare with ../shared/bench/run.sh in the same session).",
        discussion: "Workloads: text (charlstm_train and charlstm_gen), vae (vae_train), dcgan, style (style_cached: VGG19 and SqueezeNet, 400x533), deepdream (one gradient step at 350x467, 490x653 and 686x915). Prints one 'RESULT {json}' line per measurement."
    )

    @Argument(help: "Workload: text, vae, dcgan, style, deepdream.") var workload: String
    @Option(help: "Threads for gen's kernels and OpenBLAS.") var threads: Int = 2
    @Option(help: "Seconds of timed work per measurement.") var budget: Double = 20
    @Flag(help: "Compute every convolution with im2col + GEMM (no Winograd F(4x4,3x3) / F(4x4,5x5)), to measure Winograd's gain.")
    var noWinograd = false

    init() {}

    func validate() throws {
        guard ["text", "vae", "dcgan", "style", "deepdream"].contains(workload) else { throw ValidationError("unknown workload '\(workload)' (known: text, vae, dcgan, style, deepdream)") }
        try validateThreads(threads)
        if !(budget > 0 && budget <= 3600) {
            throw ValidationError("--budget must be a number of seconds in (0, 3600] (got \(budget))")
        }
    }

    func run() throws {
        Threads.configure(threads)
        Winograd.enabled = !noWinograd
        switch workload {
        case "vae":
            // One training step of the book's convolutional VAE at batch 128 (../shared/bench `vae`).
            let t = VAEBenchmark.training(budget: budget)
            emit(t, threads: threads, extra: ["ms_per_batch": String(format: "%.2f", t.medianSeconds * 1000)])
        case "style":
            // One loss+gradient evaluation with cached targets at 400x533 (../shared/bench `style_cached`).
            for net in ["vgg19", "squeezenet1_0"] {
                let r = try StyleBenchmark.evaluation(network: net, budget: budget)
                emit(r, threads: threads, extra: ["s_per_evaluation": String(format: "%.3f", r.medianSeconds)])
            }
        case "dcgan":
            // One full GAN step of the book's DCGAN at batch 20 (../shared/bench `dcgan`).
            let r = GANBenchmark.step(budget: max(budget, 30))
            emit(r.result, threads: threads, extra: [
                "steps_per_s": String(format: "%.4f", r.result.rate),
                "ms_per_step": String(format: "%.1f", r.result.medianSeconds * 1000),
                "gflop_per_call": String(format: "%.1f", GANBenchmark.flopsPerStep() / 1e9),
                "eff_gflops": String(format: "%.1f", r.gflops)])
        case "deepdream":
            // One gradient-ascent step at 350x467, 490x653, 686x915 (../shared/bench `deepdream`), random weights.
            for net in ["inception_v3", "squeezenet1_0"] {
                for r in try DreamBenchmark.run(network: net) {
                    print("RESULT {\"framework\": \"gen\", \"workload\": \"deepdream_\(r.network)_\(r.height)\", \"threads\": \(threads), "
                          + "\"value\": \(String(format: "%.3f", r.medianSeconds)), \"unit\": \"s/step\", \"height\": \(r.height), \"width\": \(r.width), \"n\": \(r.steps), \"winograd\": \(!noWinograd)}")
                }
            }
        default:
            let t = TextBenchmark.training(budget: budget)
            emit(t, threads: threads, extra: ["ms_per_batch": String(format: "%.2f", t.medianSeconds * 1000)])
            let s = TextBenchmark.sampling(budget: budget / 2)
            emit(s, threads: threads, extra: [:])
        }
    }

    func emit(_ r: TextBenchmark.Result, threads: Int, extra: [String: String]) {
        var fields = ["\"framework\": \"gen\"", "\"workload\": \"\(r.name)\"", "\"threads\": \(threads)",
                      "\"value\": \(String(format: "%.4g", r.rate))", "\"unit\": \"\(r.unit)\"", "\"n\": \(r.calls)"]
        for (k, v) in extra.sorted(by: { $0.key < $1.key }) { fields.append("\"\(k)\": \(v)") }
        fields.append("\"winograd\": \(!noWinograd)")
        print("RESULT {\(fields.joined(separator: ", "))}")
    }
}
