// Must not compile: the C ABI's plumbing is not part of the Swift API.
// expect-error: cannot find 'ReadSide' in scope
// expect-error: cannot find 'WriterLock' in scope
// expect-error: cannot find 'PointerCell' in scope
// expect-error: cannot find 'ReadToken' in scope
// expect-error: cannot find 'deferDestroy' in scope
// expect-error: cannot find 'pendingDeferredDestroyCount' in scope
import SwiftRCU

func probe() {
    _ = ReadSide.isInSection
    let _: WriterLock.Type = WriterLock.self
    let _: PointerCell.Type = PointerCell.self
    let _: ReadToken.Type = ReadToken.self
    _ = deferDestroy(object: nil, destroy: nil, context: nil)
    _ = pendingDeferredDestroyCount
}
