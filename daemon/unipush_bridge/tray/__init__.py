"""The tray: a StatusNotifierItem of its own process, over the local API (issue 14)."""
