"""Figures built on :class:`matplotlib.figure.Figure` directly, leaving pyplot's state alone.

Images
    :func:`scan_panel`: observed scans next to an imputed scan's mean, sd and error maps.
"""

from __future__ import annotations

from ._scans import scan_panel

__all__ = ["scan_panel"]
