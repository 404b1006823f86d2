"""The subcommands of ``dataspace-agency``, one module each.

Each module has ``NAME``, a one-line ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int``; ``cli.py`` lists them. Heavy imports (benchmarks, plotting, the
server) happen inside ``run`` so that ``dataspace-agency --help`` stays fast.
"""
