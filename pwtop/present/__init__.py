"""Presenters: each component's snapshot as labelled rows, text lines and tables.

:mod:`pwtop.present.rows` holds the shapes (:class:`~pwtop.present.rows.Row`,
``Section``, ``Table``, ``Presentation``) and the helpers that fill them from the metric
catalog; one module per component turns that component's snapshot into them
(``database``, ``system``, ``aio``, ``realtime``) and ``overview`` picks the key figures.
A component's ``describe(snapshot)`` returns its presenter's result; the CLI's text
(:func:`pwtop.report.presentation_lines`), the TUI's tabs and the web dashboard draw it,
so one figure reads the same on every face.

The package imports no component package's in-app code (the agent-fed presenters read the
details through :func:`pwtop.present.rows.get`), so a face that shows the async tab does
not load the app-side instrumentation.
"""
