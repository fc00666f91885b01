"""Small widgets shared by the tabs: header, alert banner, sparklines, charts, tables."""
