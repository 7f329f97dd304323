"""Pure-Python twins of the native modules in engine._native.

They exist so that tests can cross-check the compiled code on the same inputs
and benchmarks can show what compiling bought. Production code never imports
them.
"""
