"""The platform: command line, notebook execution, parameters cells and profiles, report, grid cache, atomic writes.

Submodules are imported by name; this package imports nothing, so ``protolab.core.atomic`` stays cheap.
"""
