// SwiftRCU core (room 2 of 3): the error type shared by the Swift API and the C ABI.
// SPDX-License-Identifier: LGPL-2.1-or-later

/// An error of the RCU library. Each case mirrors one status code of the C API
/// (`include/swiftrcu_types.h`); `rawValue` is that code.
public enum RcuError: Int32, Error, Sendable, CustomStringConvertible {
    /// `SWIFTRCU_EINVAL`: a NULL, stale (already freed or deferred) or wrong-kind handle.
    case invalidArgument = -22
    /// `SWIFTRCU_EPERM`: a guard that is not the thread's innermost held one, or a call not allowed
    /// in the thread's current state.
    case notPermitted = -1
    /// `SWIFTRCU_EDEADLK`: the call would wait forever (a grace-period wait inside a read-side
    /// critical section, a write to a pointer from inside its own copy-update, or a write that
    /// would close a cycle of writers).
    case deadlock = -35
    /// `SWIFTRCU_ENOMEM`: out of memory or out of handles.
    case outOfMemory = -12

    /// The C name of the status code, e.g. `"SWIFTRCU_EDEADLK"`.
    public var name: StaticString {
        switch self {
        case .invalidArgument: "SWIFTRCU_EINVAL"
        case .notPermitted: "SWIFTRCU_EPERM"
        case .deadlock: "SWIFTRCU_EDEADLK"
        case .outOfMemory: "SWIFTRCU_ENOMEM"
        }
    }

    /// A one-line explanation, the text `swiftrcu_strerror` returns.
    public var message: StaticString {
        switch self {
        case .invalidArgument: "invalid argument: NULL, stale or wrong-kind handle"
        case .notPermitted: "not permitted: guard is not the thread's innermost held guard, or call not allowed now"
        case .deadlock: "would deadlock: grace-period wait inside a read-side critical section, re-entrant write, or a cycle of writers"
        case .outOfMemory: "out of memory or out of handles"
        }
    }

    public var description: String { "\(name): \(message)" }
}
