"""Accounts and what hangs off them: roles, card bindings and the linking ceremony, reset
and enrolment codes, ending an account's access. Flask-free; imports only layer-1 rooms."""
