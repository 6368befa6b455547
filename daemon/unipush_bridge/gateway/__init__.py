"""The reference gateway: uni-push server API over HTTP, bridge protocol over websocket."""
