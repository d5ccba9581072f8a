// swift-tools-version:5.10
import PackageDescription

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
            swiftSettings: [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .target(name: "GenNN", dependencies: [
            "GenTensor",
            .product(name: "ZIPFoundation", package: "ZIPFoundation"),
        ]),
        .target(name: "GenData", dependencies: ["GenTensor", "CImageCodecs"]),
        .target(name: "GenStudio", dependencies: ["GenNN", "GenData"]),
        .target(name: "GenCLI", dependencies: [
            "GenStudio",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .executableTarget(name: "gen", dependencies: ["GenCLI"]),
        .testTarget(name: "GenTensorTests", dependencies: ["GenTensor"]),
        .testTarget(name: "GenNNTests", dependencies: ["GenNN"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GenDataTests", dependencies: ["GenData"]),
        .testTarget(name: "GenStudioTests", dependencies: ["GenStudio"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GenCLITests", dependencies: ["GenCLI"]),
    ]
)
