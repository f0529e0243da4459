// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "slotwarden",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "slotwarden", targets: ["slotwarden"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibUV",
            pkgConfig: "libuv",
            providers: [.apt(["libuv1-dev"])]
        ),
        .target(name: "UV", dependencies: ["CLibUV"], swiftSettings: strict),
        .target(name: "RESP", swiftSettings: strict),
        .target(name: "Ledger", dependencies: ["RESP"], swiftSettings: strict),
        .target(
            name: "Proxy",
            dependencies: ["UV", "RESP", "Ledger", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "slotwarden",
            dependencies: [
                "Proxy", "Ledger", "RESP", "UV",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "UVTests", dependencies: ["UV"], swiftSettings: strict),
        .testTarget(name: "RESPTests", dependencies: ["RESP"], swiftSettings: strict),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger", "RESP"], swiftSettings: strict),
        .testTarget(name: "ProxyTests", dependencies: ["Proxy", "UV", "RESP", "Ledger"], swiftSettings: strict),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Proxy", "UV", "RESP", "Ledger", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
