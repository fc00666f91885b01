"""One module per tab. Each tab renders from :class:`pwtop.tui.view.View` only when shown."""
