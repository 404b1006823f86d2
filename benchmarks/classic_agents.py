"""Classic agents benchmark: ``python benchmarks/classic_agents.py [--quick]``.
The code lives in ``dataspace_agency.compare.bench.classic`` so the installed CLI can run it."""
from dataspace_agency.compare.bench.classic import main

if __name__ == "__main__":
    raise SystemExit(main())
