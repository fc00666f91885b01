"""pwtop's full-screen Textual app. The only package that imports Textual.

Layout: ``app.py`` (the app, its main screen and the polling glue), ``polling.py`` (the
non-overlapping scheduler), ``view.py`` (what tabs render from), ``tabs/`` (one module per
tab), ``widgets/``, ``screens/`` (help, optimize, too small), ``bindings.py`` (every key,
defined once), ``theming.py`` and ``state.py`` (remembered last tab and theme).
"""
