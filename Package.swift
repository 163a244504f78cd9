// swift-tools-version: 6.1
// SwiftRCU: an RCU-protected pointer for Swift, C and Python, built on liburcu (memb flavour).
//
// Three rooms (see README "Layout"); each calls only the rooms below it:
//   CLiburcuShim  - room 1, C: the only code that touches liburcu (inline read-side fast path,
//                   thread registry).
//   SwiftRCUCore  - room 2, the Swift core: read sections, the pointer cell (the one writer core
//                   of both faces), grace periods, the release of old objects and the batches
//                   of deferred destroys; package
//                   access (and SPI for what the C ABI inlines), no Swift concurrency;
//   CSwiftRCUCore - room 2, C: the layouts of the pointer cell, the retired record and the
//                   batch blocks of deferred destroys; the batches' storage, locks and fork
//                   handlers.
//   SwiftRCU      - room 3, the Swift API (`Rcu`, `RcuGuard`, `RcuOld`, the waits, async forms).
//   SwiftRCUCABI  - room 3, the C ABI: `@c` functions over opaque handles, shipped as
//                   libswiftrcu.so (it builds on the core, not on the Swift API);
//   CSwiftRCUABI  - room 3, C: the C ABI's C part (the handle table's storage and slot layout,
//                   its lock and fork handlers, the bound loaders).
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
        .target(name: "CSwiftRCUCore", dependencies: ["CLiburcuShim"]),
        .target(name: "SwiftRCUCore", dependencies: ["CSwiftRCUCore", "CLiburcuShim"]),
        .target(name: "SwiftRCU", dependencies: ["SwiftRCUCore", "CSwiftRCUCore", "CLiburcuShim"]),
        .target(name: "CSwiftRCUABI", dependencies: ["CSwiftRCUCore", "CLiburcuShim"]),
        .target(
            name: "SwiftRCUCABI",
            dependencies: ["SwiftRCUCore", "CSwiftRCUCore", "CSwiftRCUABI", "CLiburcuShim", "SwiftRCUTypes"]
        ),
        .testTarget(
            name: "SwiftRCUTests", dependencies: ["SwiftRCU", "SwiftRCUCore", "SwiftRCUCABI", "SwiftRCUTypes"]
        ),
    ]
)
