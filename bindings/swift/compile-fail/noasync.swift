// Must not compile: a read section opened in async code could span an await.
// expect-error: 'readLock' is unavailable from asynchronous contexts; a read section must not span an await: use withReadLock { } or Rcu.dereference with a synchronous closure
// expect-error: 'init' is unavailable from asynchronous contexts; a read section must not span an await: use withReadLock { } or Rcu.dereference with a synchronous closure
import SwiftRCU

func probe() async {
    let g = readLock()
    await Task.yield()
    g.unlock()
}

func probeInit() async {
    let g = RcuGuard()
    await Task.yield()
    g.unlock()
}
