"""Dataspace routing benchmark: ``python benchmarks/dataspace_routing.py [--quick]``.
The code lives in ``dataspace_agency.compare.bench.routing`` so the installed CLI can run it."""
from dataspace_agency.compare.bench.routing import main

if __name__ == "__main__":
    raise SystemExit(main())
