"""Who acts: a request's principal (the operator token, an API key bound to one account, or a
web session), the API keys and the operator token that prove it, and the writes prepared for
an account's own wallet while they wait for its transactions (docs/security.md).

Below ``node.py`` (which builds these services) and above the domain packages; the HTTP faces
(``http/``, ``api/``, ``web/``) and the CLI use them.
"""
