"""Near-duplicate detection for Datanets: MinHash signatures and a persistent LSH index.

A contribution is rejected when one of its records is a near duplicate (estimated Jaccard
similarity of shingle sets >= 0.8 by default) of a record already committed to the datanet
or of another record of the same contribution, or a reworded copy of another contributor's
record (exact Jaccard of the shingle sets >= 0.7, confirmed on the LSH candidates:
``jaccard``, ``NearDupIndex.candidates``; ``datanets.contribute``). Exact duplicates are
the database's job (a unique sha256 per datanet); this package only finds near duplicates.
A query sees committed entries only.

Modules
    ``minhash``   normalisation, shingles and MinHash signatures (``MinHasher``, ``estimate``);
                  the measurements behind the choice of shingles are in its docstring
    ``lsh``       LSH banding: band hashes, band entries, band lookups, default parameters
    ``segments``  the on-disk format: segment files, tombstones, ``meta.json``
    ``commit``    which segments a commit writes, merges or keeps, and writing them
    ``index``     ``NearDupIndex``: open, create, query, stage, commit, rebuild, locking

Index
    ``NearDupIndex`` keeps one datanet's signatures in a directory of immutable segment files
    plus ``meta.json``. A segment holds its keys (int64, sorted), the signature matrix
    (uint32, n x num_perm) and one sorted uint64 array of band entries
    ``band << (64 - band_bits) | band_hash << pos_bits | position``; a query is a binary
    search per segment for all its bands at once (``np.searchsorted``), candidates from any
    matching band are verified by their signature estimate. Commits write a new segment and
    merge the newest segments while the older one is not larger than the newer one (so
    there are about log2(n) segments and each entry is rewritten about log2(n) times).
    Removals are tombstones (segment, position) until their segment is merged.

    Durability: every file is written to a temporary name, fsynced and moved into place with
    ``os.replace``; ``meta.json`` is replaced last and is the commit point; old files are
    deleted only after it. A crash at any point leaves the previous commit readable. One
    writer at a time: commits take an ``flock`` on ``lock`` and fail with ``StoreError`` if
    another process committed since this one opened the index.
"""

from openledger.datanets.dedup.index import NearDupIndex
from openledger.datanets.dedup.lsh import (
    DEFAULT_BANDS,
    DEFAULT_ROWS,
    DEFAULT_THRESHOLD,
    candidate_probability,
)
from openledger.datanets.dedup.minhash import (
    DEFAULT_NUM_PERM,
    DEFAULT_SEED,
    DEFAULT_SHINGLE_SIZE,
    MinHasher,
    estimate,
    jaccard,
    normalise,
    shingles,
)

__all__ = [
    "DEFAULT_BANDS",
    "DEFAULT_NUM_PERM",
    "DEFAULT_ROWS",
    "DEFAULT_SEED",
    "DEFAULT_SHINGLE_SIZE",
    "DEFAULT_THRESHOLD",
    "MinHasher",
    "NearDupIndex",
    "candidate_probability",
    "estimate",
    "jaccard",
    "normalise",
    "shingles",
]
