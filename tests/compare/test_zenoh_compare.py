"""``zenoh`` as a backend of ``dataspace-agency compare``: every workload runs on it (tiny
sizes, in this process, as test_compare runs the in-process backends) and the semantic
workloads show the dataspace's behaviour: a late joiner answered, a dead responder failing
the request at once."""

from __future__ import annotations

from dataspace_agency.compare import backends, worker, workloads


def test_every_workload_runs_on_the_zenoh_backend():
    backend = backends.get("zenoh")
    assert backend.unavailable(backends.Options()) is None
    assert "full" in backend.profiles and "quick" not in backend.profiles
    results = {}
    for workload in workloads.NAMES:
        params = workloads.params_for(workloads.get(workload), "tiny", backend)
        if isinstance(params.get("agents"), list):
            params = {**params, "agents": params["agents"][0]}
        result = worker.run_one(backend, workload, params, backends.Options())
        assert result["ok"], f"{workload}: {result.get('error')}\n{result.get('traceback')}"
        results[workload] = result
    # The dataspace's semantics hold on Zenoh: a dead responder fails the request
    # (ActionError, not a timeout), a request to a late joiner is answered.
    assert results["failure"]["figures"]["timed_out"] == 0, results["failure"]["outcome"]
    assert results["failure"]["outcome"]["error"] == "ActionError"
    assert results["late_join"]["figures"]["answered"] == 1
