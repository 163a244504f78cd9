// swift-tools-version: 6.1
// SwiftRCU's Swift benchmark: the Swift API's read path next to the C ABI (libswiftrcu.so, from an
// installed prefix) and liburcu's inline read path (CBenchFloor), in one process.
// Build from bench/Makefile, which passes the prefix:
//   swift build -c release --scratch-path <dir> -Xcc -I<prefix>/include -Xlinker -L<prefix>/lib
import PackageDescription

let package = Package(
    name: "SwiftRCUBench",
    dependencies: [.package(name: "SwiftRCU", path: "../..")],
    targets: [
        .target(
            name: "CBenchFloor",
            linkerSettings: [
                .linkedLibrary("swiftrcu"), .linkedLibrary("urcu-memb"), .linkedLibrary("urcu-common"),
                .linkedLibrary("pthread"),
            ]
        ),
        .executableTarget(
            name: "swiftrcu-bench-swift",
            dependencies: ["CBenchFloor", .product(name: "SwiftRCU", package: "SwiftRCU")]
        ),
    ]
)
