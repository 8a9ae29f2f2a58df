"""Administration: relying parties, initial access tokens, schools' rosters and accounts,
card bindings, the audit log. Rules live in the plain modules; ``views``/``api`` only parse,
call and render."""
