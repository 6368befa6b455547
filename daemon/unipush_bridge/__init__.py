"""uni-push 2.0 on the desktop."""

__version__ = "0.1.0"
