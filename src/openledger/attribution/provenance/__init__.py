"""Token provenance: each generated token traced to the training records it came from,
weighted by how much the fine-tune raised its probability.

For a model fine-tuned on a datanet, the answer to "whose data produced this?" is read off
the completion itself: a token is explained by the shortest distinctive n-gram ending at
it in the examples the adapter was trained on (tokens exactly as trained), its weight is
the share of its probability that the adapter added over the base model, and a record
that only repeats what an earlier contributor had already written earns nothing. Tokens no
record explains, and what the base model knew anyway, stay unattributed (the ledger pays
that part pro rata to approved records).

Modules
    ``trace``       the algorithm, pure and exact (integers and fractions)
    ``gains``       per-token gains of the adapter over the base (float64 forward passes)
    ``index``       the on-disk index: the training examples' suffix array + parameters
    ``attributor``  ``ProvenanceAttributor.attribute_ids(prompt_ids, completion_ids)``

docs/attribution-verify.md states the algorithm precisely enough to reimplement it.
"""

from openledger.attribution.provenance.attributor import ProvenanceAttributor
from openledger.attribution.provenance.index import (
    METHOD,
    ProvenanceIndex,
    ProvenanceParams,
    build,
    example_documents,
)

__all__ = [
    "METHOD",
    "ProvenanceAttributor",
    "ProvenanceIndex",
    "ProvenanceParams",
    "build",
    "example_documents",
]
