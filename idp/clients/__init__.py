"""The client registry (layer 2): relying parties, their metadata, how they authenticate,
and the access tokens that let apps register themselves.

- ``auth_methods``: THE list of client-auth methods and which use a secret.
- ``registry``: ClientSpec, validation, create / update / rotate / enable / delete.
- ``metadata``: RFC 7591 metadata JSON <-> ClientSpec, and a client as metadata.
- ``access_tokens``: initial access tokens (RFC 7591) and registration access tokens (7592).

Imports only layer 1 (settings, store, pairwise, outbound, keys, audit); the protocol
(``idp.oidc``), the admin pages and the CLI import it, never the other way round.
"""
