"""The JSON <-> Preserves conversions of classic messages (classic/values.py): the fast walk
against the careful one, on a typical classic message (best of 7 timeit runs, alternating).

    .venv/bin/python benchmarks/values_walks.py
"""

import timeit
from dataspace_agency.classic import values as v
msg = {"meta": {"id": "7f3c9a2e-1b4d-4c8e-9f1a-2b3c4d5e6f70", "parent_id": None},
       "to": "researcher", "from": "alice",
       "action": {"name": "search", "args": {"query": "dataspace", "limit": 10,
                                             "filters": ["a", "b"], "exact": False}}}
pv = v.to_preserves(msg)
# The careful walks are private (classic/values.py): this benchmark is their only caller
# outside the module.
cases = {
  "to_preserves fast": lambda: v._fast_to_preserves(msg),
  "to_preserves careful": lambda: v._run(v._walk_json, msg, v._PRESERVES, "value"),
  "from_preserves fast": lambda: v._fast_from_preserves(pv),
  "from_preserves careful": lambda: v._run(v._walk_preserves, pv, "", "value"),
}
best = {k: float("inf") for k in cases}
for _ in range(7):
    for k, f in cases.items():
        best[k] = min(best[k], min(timeit.repeat(f, number=2000, repeat=3)) / 2000 * 1e6)
for k in cases: print(f"{k:24s} {best[k]:6.2f} µs")
for d in ("to_preserves", "from_preserves"):
    print(f"{d}: fast is {100 * (1 - best[d + ' fast'] / best[d + ' careful']):.0f}% cheaper")
