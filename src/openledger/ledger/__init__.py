"""The ledger: what a paid inference costs, who it pays, and the proof of both.

A request passes the stages in this order, one subpackage each:

- ``credit/``: inference credit from the escrow (deposits, withdrawals) and the holds a
  request takes against it before any compute;
- ``paid/``: one paid call end to end (hold, generate, attribute, charge), for one choice
  or several;
- ``pricing/``: the fee and its split in exact wei, from the protocol parameters, priced
  off the request path;
- ``receipts/``: priced charges become canonical, hash-chained, signed receipts, written in
  groups, with public ids;
- ``settlement/``: receipts become per-epoch cumulative earnings, a Merkle root on chain,
  claims, and the audit that recomputes them;
- ``verification/``: the public artefacts that let anyone recheck a receipt's attribution.

``service.py`` is the façade the node wires (the credit book and the receipt writer behind
one object); ``access.py`` holds datanet access fees, which use every stage.
"""
