"""Adapters: all I/O with the outside world (N-Drive, local files, ARS), each behind a narrow typed API.

Foreign exceptions (httpx, OSError) are translated into :mod:`integration.errors` at each adapter's edge.
Adapters never import ``actors`` or ``api``.
"""
