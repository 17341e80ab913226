"""What both HTTP faces share: the JSON API (``api/``) and the web app (``web/``) import from
here and never from each other.

- ``deps``: the node as a FastAPI dependency (``NodeDep``);
- ``credentials``: a request's principal as ``Annotated`` dependencies (``Reader``,
  ``Writer``, ``Inferrer``, ``MaybePrincipal``);
- ``acting``: who signs a write (the node, or the account's own wallet);
- ``bounds``: bounded ids, pages and texts for paths, queries and bodies;
- ``guard`` and ``errors``: what every request passes first, and the error format every
  answer uses (OpenAI's under /v1);
- ``prompt_budget``: an over-long prompt refused before it is tokenised;
- ``uploads`` and ``datanets``: uploaded files saved under safe names, a snapshot as a
  download, a contribution as an account may read it.

``app.py`` composes both faces over one node; see README.md's "Layers".
"""
