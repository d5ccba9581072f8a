// swift-tools-version:5.10
import PackageDescription
import Foundation

/// Release builds compile the engine for the CPU that builds it (`-target-cpu native`: AVX2/FMA or
/// AVX-512 where present, so the SIMD8 kernels run as one 256-bit instruction, not two SSE halves).
/// Users build from source, so the binary runs where it was built. `GEN_PORTABLE=1 swift build ...`
/// builds for the baseline architecture instead (a binary to copy to other machines).
let portable = ProcessInfo.processInfo.environment["GEN_PORTABLE"].map { !$0.isEmpty && $0 != "0" } ?? false
let cpuFlags: [String] = portable ? [] : ["-target-cpu", "native"]
let releaseSwift: [SwiftSetting] = [.unsafeFlags(cpuFlags, .when(configuration: .release))]

let package = Package(
    name: "gen",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "gen", targets: ["gen"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "CImageCodecs",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("png"), .linkedLibrary("jpeg"), .linkedLibrary("z")]
        ),
        .target(
            name: "GenTensor",
            dependencies: ["COpenBLAS"],
            swiftSettings: [.unsafeFlags(["-Ounchecked"] + cpuFlags, .when(configuration: .release))]
        ),
        .target(name: "GenNN", dependencies: [
            "GenTensor",
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ], swiftSettings: releaseSwift),
        .target(name: "GenData", dependencies: ["GenTensor", "CImageCodecs"], swiftSettings: releaseSwift),
        .target(name: "GenStudio", dependencies: ["GenNN", "GenData"], swiftSettings: releaseSwift),
        .target(name: "GenCLI", dependencies: [
            "GenStudio",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], swiftSettings: releaseSwift),
        .executableTarget(name: "gen", dependencies: ["GenCLI"]),
        .testTarget(name: "GenTensorTests", dependencies: ["GenTensor"]),
        .testTarget(name: "GenNNTests", dependencies: ["GenNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GenDataTests", dependencies: ["GenData"]),
        .testTarget(name: "GenStudioTests", dependencies: ["GenStudio"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GenCLITests", dependencies: ["GenCLI"]),
    ]
)
