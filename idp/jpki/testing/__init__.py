"""Test and demo scaffolding for JPKI: never imported by the running IdP's sign-in path.

- :mod:`~idp.jpki.testing.testpki`: an in-memory JPKI-like PKI (root, cards, CRLs, OCSP
  responder certificate) with the shapes of the real J-LIS CA but ``O=JPKI-TEST``;
- :mod:`~idp.jpki.testing.pki_dir`: that PKI written to and loaded from a directory;
- :mod:`~idp.jpki.testing.ocsp_responder`: a real HTTP OCSP responder for the test CA.

A new kind of test fixture for cards (say a smartphone JPKI test key) goes here too.
"""
