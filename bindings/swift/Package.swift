// swift-tools-version: 6.1
// A separate package that depends on SwiftRCU as a user's package does (by path here), in the
// Swift 6 language mode: it tests the Swift API from outside, as its users meet it.
// Run by `make test` (scripts/check-swift-client.sh), which also compiles the snippets in
// compile-fail/ against the same dependency and expects each to be rejected.
import PackageDescription

let package = Package(
    name: "SwiftRCUClient",
    dependencies: [.package(name: "SwiftRCU", path: "../..")],
    targets: [
        .testTarget(name: "ClientTests", dependencies: [.product(name: "SwiftRCU", package: "SwiftRCU")])
    ],
    swiftLanguageModes: [.v6]
)
