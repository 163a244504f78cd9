// SwiftRCU Swift API (room 3 of 3, over the core): the core's one public type.
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// `RcuError` lives in the core because the C ABI's status codes and messages come from it too, so
// the two faces cannot drift apart; it is part of this module's API.

@_exported import enum SwiftRCUCore.RcuError
