// swift-tools-version:6.0
// Headroom: LLM infrastructure benchmarking and capacity planning.
import PackageDescription

let package = Package(
    name: "Headroom",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "headroom", targets: ["headroom"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // OpenBLAS through its C interface (pkg-config name `openblas`).
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // Hot loops that need vector intrinsics, behind a runtime CPU check.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-fno-strict-aliasing"])]
        ),
        .target(name: "HeadroomKernels", dependencies: ["CBLAS", "CKernels"]),
        // The serving scheduler's policy as pure logic, shared by the engine and the simulator: no dependencies.
        .target(name: "HeadroomScheduling"),
        .target(name: "HeadroomEngine", dependencies: ["HeadroomKernels", "HeadroomScheduling"]),
        // OpenAI's completion API: requests parsed field by field, responses and server-sent events. Foundation only.
        .target(name: "HeadroomOpenAI"),
        .target(name: "HeadroomCore", dependencies: ["Yams"]),
        .target(name: "HeadroomStore", dependencies: ["HeadroomCore", .product(name: "GRDB", package: "GRDB.swift")]),
        .target(name: "HeadroomReport", dependencies: ["HeadroomCore", "HeadroomStore"]),
        .target(
            name: "HeadroomRunner",
            dependencies: ["HeadroomKernels", "HeadroomEngine", "HeadroomCore", "HeadroomStore", "HeadroomReport"]
        ),
        // The readers of user files as fuzz targets, the mutation loop, and the supervised runner (`make fuzz`).
        .target(name: "HeadroomFuzz", dependencies: ["HeadroomKernels", "HeadroomEngine", "HeadroomCore", "HeadroomOpenAI"]),
        .executableTarget(
            name: "headroom-fuzz",
            dependencies: ["HeadroomFuzz", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "headroom",
            dependencies: [
                "HeadroomRunner", "HeadroomCore", "HeadroomStore", "HeadroomReport", "HeadroomKernels", "HeadroomEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "HeadroomKernelsTests", dependencies: ["HeadroomKernels", "CKernels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HeadroomSchedulingTests", dependencies: ["HeadroomScheduling"]),
        .testTarget(name: "HeadroomEngineTests", dependencies: ["HeadroomEngine", "HeadroomKernels", "HeadroomScheduling"]),
        .testTarget(name: "HeadroomCoreTests", dependencies: ["HeadroomCore"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HeadroomStoreTests", dependencies: ["HeadroomStore", "HeadroomCore"]),
        .testTarget(name: "HeadroomReportTests", dependencies: ["HeadroomReport", "HeadroomStore", "HeadroomCore"]),
        .testTarget(name: "HeadroomOpenAITests", dependencies: ["HeadroomOpenAI"]),
        .testTarget(name: "HeadroomFuzzTests", dependencies: ["HeadroomFuzz", "HeadroomEngine", "HeadroomCore"]),
        .testTarget(name: "HeadroomRunnerTests", dependencies: ["HeadroomRunner", "HeadroomStore", "HeadroomCore"]),
    ],
    swiftLanguageModes: [.v5]
)
