// swift-tools-version: 6.1
// SwiftRCU: an RCU-protected pointer for Swift, C and Python, built on liburcu (memb flavour).
//
// Three rooms, one target each (see README "Layout"):
//   CLiburcuShim  - C: the only code that touches liburcu (inline read-side fast path, thread registry).
//   SwiftRCU      - Swift core and Swift API (`Rcu`, `RcuGuard`, `RcuOld`).
//   SwiftRCUCABI  - the C ABI: `@c` functions over opaque handles, shipped as libswiftrcu.so.
// SwiftRCUTypes is the hand-written public C header (include/swiftrcu_types.h) seen as a module.
import PackageDescription

let package = Package(
    name: "SwiftRCU",
    products: [
        .library(name: "SwiftRCU", targets: ["SwiftRCU"]),
        .library(name: "swiftrcu", type: .dynamic, targets: ["SwiftRCUCABI"]),
    ],
    targets: [
        .systemLibrary(name: "SwiftRCUTypes", path: "include"),
        .target(
            name: "CLiburcuShim",
            linkerSettings: [.linkedLibrary("urcu-memb"), .linkedLibrary("urcu-common"), .linkedLibrary("pthread")]
        ),
        .target(name: "SwiftRCU", dependencies: ["CLiburcuShim"]),
        .target(name: "SwiftRCUCABI", dependencies: ["SwiftRCU", "CLiburcuShim", "SwiftRCUTypes"]),
        .testTarget(name: "SwiftRCUTests", dependencies: ["SwiftRCU", "SwiftRCUCABI", "SwiftRCUTypes"]),
    ]
)
