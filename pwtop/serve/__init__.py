"""``pwtop serve``: a rig's headless daemon and its wire protocol.

:mod:`pwtop.serve.protocol` is the wire format both the daemon and its readers
(``pwtop fleet``, ``pwtop --connect``) use; the daemon's modules are loaded only by
``pwtop serve``. This package imports nothing, so a reader importing the protocol loads
no server code.
"""
