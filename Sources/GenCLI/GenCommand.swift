import ArgumentParser
import GenStudio

/// The root command: `gen <generator> [action] [arguments] [options]`.
public struct GenCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "A studio for generative deep learning: text, style, dream, VAE and GAN.",
        subcommands: [TextCommand.self, ImageCommand.self, BenchCommand.self]
    )
    public init() {}
}
