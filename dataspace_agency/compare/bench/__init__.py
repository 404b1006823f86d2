"""Benchmarks that ship with the package, so the ``dataspace-agency`` CLI can run them.

* ``routing``: the dataspace routing benchmark (index vs naive scan, end-to-end delivery).
"""
