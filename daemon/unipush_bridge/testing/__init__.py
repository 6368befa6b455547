"""Tools for testing notification code without a phone or a desktop: a capture
notification server (``unipush-bridge capture``), a private bus, and a pytest plugin.

Importing this package (or :mod:`.plugin`, which pytest loads in every run of a project
that installed us) imports nothing heavy: each module loads its dependencies on use.
"""
