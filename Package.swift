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
        // The server (`headroom serve`) and its metrics and log; the HTTP client of its tests.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        // Percentiles of load latencies (`LatencyDistribution`), as GuideLLM and vLLM's benchmarks compute them.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        // The shared results store (`--db postgres://…`, `headroom history push`).
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
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
        // `headroom serve`: the engine behind OpenAI's API on Hummingbird, with Prometheus metrics and a log line per request.
        .target(
            name: "HeadroomServe",
            dependencies: [
                "HeadroomEngine", "HeadroomKernels", "HeadroomOpenAI", "HeadroomCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // HeadroomScheduling: the simulator runs the engine's own scheduler.
        .target(name: "HeadroomCore", dependencies: ["HeadroomScheduling", "Yams", .product(name: "Histogram", package: "hdrhistogram-swift")]),
        // `headroom load`: an OpenAI-compatible endpoint measured under a load profile, request by request.
        .target(
            name: "HeadroomLoad",
            dependencies: [
                // HeadroomKernels: its SplitMix64, the one seeded generator of synthetic data.
                "HeadroomCore", "HeadroomOpenAI", "HeadroomKernels",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        // The store protocol; SQLite through GRDB (the embedded default) and PostgreSQL through postgres-nio (shared).
        .target(
            name: "HeadroomStore",
            dependencies: [
                "HeadroomCore", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "HeadroomReport", dependencies: ["HeadroomCore", "HeadroomStore"]),
        .target(
            name: "HeadroomRunner",
            // HeadroomLoad: a scenario's `measure.load` entries are workloads like the others.
            dependencies: ["HeadroomKernels", "HeadroomEngine", "HeadroomCore", "HeadroomStore", "HeadroomReport", "HeadroomLoad"]
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
                "HeadroomServe", "HeadroomOpenAI", "HeadroomLoad",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "HeadroomKernelsTests", dependencies: ["HeadroomKernels", "CKernels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HeadroomSchedulingTests", dependencies: ["HeadroomScheduling"]),
        .testTarget(name: "HeadroomEngineTests", dependencies: ["HeadroomEngine", "HeadroomKernels", "HeadroomScheduling"],
                    resources: [.copy("Fixtures")]),
        .testTarget(name: "HeadroomCoreTests", dependencies: ["HeadroomCore", "HeadroomScheduling"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HeadroomStoreTests", dependencies: ["HeadroomStore", "HeadroomCore"]),
        .testTarget(name: "HeadroomReportTests", dependencies: ["HeadroomReport", "HeadroomStore", "HeadroomCore"]),
        .testTarget(name: "HeadroomOpenAITests", dependencies: ["HeadroomOpenAI"]),
        .testTarget(name: "HeadroomFuzzTests", dependencies: ["HeadroomFuzz", "HeadroomEngine", "HeadroomCore"]),
        .testTarget(
            name: "HeadroomServeTests",
            dependencies: [
                // HeadroomFuzz: its JSON-aware mutations for the request bodies of ServeFuzzTests.
                "HeadroomServe", "HeadroomEngine", "HeadroomKernels", "HeadroomOpenAI", "HeadroomFuzz",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "HeadroomLoadTests",
            dependencies: [
                // NIO: the streaming fixture server; HeadroomServe: one run against `headroom serve`.
                // HeadroomRunner, HeadroomStore: a scenario's measure.load run, stored and gated, against the fixture.
                "HeadroomLoad", "HeadroomCore", "HeadroomOpenAI", "HeadroomServe", "HeadroomEngine", "HeadroomRunner", "HeadroomStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        // Yams: the Kubernetes manifest `headroom sweep` writes is read back as YAML.
        .testTarget(name: "HeadroomRunnerTests", dependencies: ["HeadroomRunner", "HeadroomStore", "HeadroomCore", "Yams"]),
    ],
    swiftLanguageModes: [.v5]
)
