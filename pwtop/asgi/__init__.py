"""pwtop inside an ASGI app (FastAPI, Starlette): the request-timing middleware and the
``/performance`` endpoints.

::

    app.add_middleware(PerformanceMiddleware, optimizer=opt)
    app.mount("/performance", PerformanceApp(db_path=DB, async_optimizer=opt,
                                             realtime_optimizer=rt))

:class:`PerformanceMiddleware` (:mod:`pwtop.asgi.middleware`) is in-app instrumentation.
:class:`PerformanceApp` (:mod:`pwtop.asgi.app`) is a face: it drives pwtop's engine (a
:class:`pwtop.session.Session`) on the app's own event loop and answers from its latest
snapshot. Both are plain ASGI (no FastAPI or Starlette import), and both names are
imported on first use, so importing this package loads neither side.
"""

from __future__ import annotations

from pwtop.lazy import exports

_EXPORTS = {"PerformanceApp": "pwtop.asgi.app",
            "PerformanceMiddleware": "pwtop.asgi.middleware"}

__all__ = ["PerformanceApp", "PerformanceMiddleware"]

__getattr__ = exports(__name__, _EXPORTS)
