"""pwtop's full-screen Textual app. The only package that imports Textual.

Layout: ``app.py`` (the app and its main screen: a face of one
:class:`pwtop.session.Session`, which owns polling, alerts, history and advice),
``view.py`` (what tabs render from), ``watching.py`` (the charts' older points),
``tabs/`` (one module per tab), ``widgets/``, ``screens/`` (help, optimize, too small),
``bindings.py`` (every key, defined once), ``theming.py`` and ``state.py`` (remembered
last tab and theme).
"""

from pwtop.lazy import exports

#: The apps, imported on first use: ``import pwtop.tui`` alone loads no Textual.
__getattr__ = exports(__name__, {"PwtopApp": "pwtop.tui.app", "FleetApp": "pwtop.tui.fleet"})
