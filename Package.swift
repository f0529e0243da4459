// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

/// The data plane's state is confined to its loop thread and is never accessed in overlapping ways,
/// yet each access to a class property costs a dynamic exclusivity check (about 80 instructions with
/// its thread-local bookkeeping), more than 20 per proxied request (scripts/bench-instructions).
/// Release builds of these modules drop the dynamic checks; debug builds, which the test suite
/// runs, keep them, so an overlapping access would still fail a test. Static checks stay on.
let dataPlane: [SwiftSetting] = strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "slotwarden",
    products: [
        .executable(name: "slotwarden", targets: ["slotwarden"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .target(name: "UV", dependencies: ["CLibUV"], swiftSettings: dataPlane),
        .target(name: "RESP", swiftSettings: dataPlane),
        .target(name: "Accounting", dependencies: ["RESP"], swiftSettings: dataPlane),
        .target(
            name: "Proxy",
            dependencies: ["UV", "RESP", "Accounting", .product(name: "Logging", package: "swift-log")],
            swiftSettings: dataPlane
        ),
        .target(
            name: "LocalCluster",
            dependencies: ["Proxy", "Accounting", "RESP", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .target(
            name: "Settings",
            dependencies: ["Proxy", .product(name: "Logging", package: "swift-log"), .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        /// The admin API's query parameters, parsed apart from the HTTP stack so that a fuzz target can
        /// drive them without Hummingbird or NIO.
        .target(name: "AdminQuery", dependencies: ["Accounting", "RESP"], swiftSettings: strict),
        .target(
            name: "Admin",
            dependencies: [
                "AdminQuery", "Accounting", "Proxy", "RESP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Fleet",
            dependencies: [
                "Admin", "Proxy", "Accounting", "RESP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "slotwarden",
            dependencies: [
                "Admin", "Fleet", "Settings", "LocalCluster", "Proxy", "Accounting", "RESP", "UV",
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TestSupport",
            dependencies: [
                "LocalCluster", "Proxy", "Accounting", "RESP", .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(name: "UVTests", dependencies: ["UV"], swiftSettings: strict),
        .testTarget(name: "RESPTests", dependencies: ["RESP"], resources: [.copy("Resources")], swiftSettings: strict),
        .testTarget(name: "AccountingTests", dependencies: ["Accounting", "RESP"], swiftSettings: strict),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "UV", "RESP", "Accounting"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Admin", "Fleet", "LocalCluster", "TestSupport", "Proxy", "UV", "RESP", "Accounting", .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AdminTests",
            dependencies: [
                "Admin", "Fleet", "TestSupport", "Proxy", "Accounting", "RESP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Micro-benchmarks of the data plane's hot paths (`swift package benchmark`; see Benchmarks/), kept
// apart from the targets above, which they only use. The MallocInterposer trait counts every
// allocation of a measured lane; naming it leaves out the package's other default trait, whose ARC
// counting through a runtime interposer these benchmarks do not measure. Built like the data plane, so
// that the session the benchmarks drive pays no exclusivity checks that a real session does not.
if Context.environment["SLOTWARDEN_FUZZ"] == nil {
    package.dependencies.append(
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"])
    )
    package.targets.append(
        .executableTarget(
            name: "SlotwardenBenchmarks",
            dependencies: ["RESP", "Accounting", "Proxy", .product(name: "Benchmark", package: "benchmark")],
            path: "Benchmarks/SlotwardenBenchmarks",
            swiftSettings: dataPlane,
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    )
}

// libFuzzer targets (see Fuzz/ and scripts/fuzz), only when SLOTWARDEN_FUZZ is set, in place of the
// benchmarks: everything is built with `-sanitize=fuzzer,address` then, which the benchmark plugin's
// tool cannot link with, and which no other product needs.
if Context.environment["SLOTWARDEN_FUZZ"] != nil {
    package.targets.append(
        .executableTarget(
            name: "SlotwardenFuzz",
            dependencies: ["RESP", "Accounting", "Proxy", "Settings", "AdminQuery"],
            path: "Fuzz/SlotwardenFuzz",
            swiftSettings: strict
        )
    )
}
