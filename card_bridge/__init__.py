"""Mynagate card bridge: the local helper that lets a browser or tablet sign in with the
JPKI user-authentication certificate of a MyNumber card.

Installed separately on school PCs, so it must never import the provider package (`idp`).
"""

__version__ = "0.1.0"
