"""The subcommands of ``dataspace-agency``, one module each.

Each module has ``NAME``, a one-line ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; ``cli.py`` lists them. Optional: ``EXPECTED`` (exception type ->
exit status) and ``INTERRUPTED`` (what Ctrl-C did): ``cli.py`` runs every command under
``failures.run_command``, so that those failures, even inside trio's exception groups,
end in one line and a non-zero status instead of a traceback. Heavy imports (benchmarks, plotting, the
server) happen inside ``run`` so that ``dataspace-agency --help`` stays fast.
"""
