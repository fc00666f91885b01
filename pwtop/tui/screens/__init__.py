"""Screens over the tabs: help, the optimize dialog, the too-small notice."""
