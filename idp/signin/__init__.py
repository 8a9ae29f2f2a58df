"""Signing in: the vocabulary both the protocol and the pages use (who is signed in and
how), sessions, throttling and the password sign-in service. Imports only layer-1 rooms."""
