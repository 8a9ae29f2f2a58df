"""Card token formats: one module per ``format`` string a card bridge may post.

:mod:`idp.jpki.token` dispatches a posted token on its ``format`` to one
:class:`~idp.jpki.formats.fields.CardFormat` (like web-eid's validator factory): the format
decides the token's shape and how its signature over ``(origin, challenge)`` is checked;
path validation, profile and revocation are the same for every format.

To add a format (say a smartphone JPKI token): write ``formats/<name>.py`` exporting
``FORMAT = CardFormat(...)`` (see :mod:`~idp.jpki.formats.jpki_auth`), add it to
``idp.jpki.token.FORMATS``, and give it a test next to ``tests/jpki/test_formats.py``.
"""
