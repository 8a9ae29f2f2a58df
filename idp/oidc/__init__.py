"""The OpenID Connect protocol, on Authlib: one module per endpoint or specification."""
