"""Log axes labelled the way a reader reads numbers (0.5, 60, 300, 1,000), shared by the
comparison's plots (plots.py) and the application workloads' plots (plots_apps.py).
Matplotlib's default log axis mixes 3×10², 100 and 6×10¹ on one axis."""

from __future__ import annotations

from typing import Any

from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter


def plain(value: float, _position: Any = None) -> str:
    """A tick label without powers of ten: 0.5, 60, 300, 1,000."""
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:g}"


def plain_log_axis(axis: Any, subs: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0)) -> None:
    """Ticks at ``subs`` times each power of ten (1, 2, 3 and 5 by default), all labelled
    the same plain way."""
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(plain))
    axis.set_minor_formatter(NullFormatter())
