"""The two wire protocols, as plain data: the gateway websocket protocol (:mod:`.gateway`)
and the local API (:mod:`.local`). Standard library only; both ends use them."""
