"""The daemon runtime: the uni-push semantics without I/O (:mod:`.core`), the asyncio
driver that carries them out (:mod:`.driver`), and the I/O adapters around it (store,
notifier, link, local API server), wired by the composition root (:mod:`.daemon`)."""
