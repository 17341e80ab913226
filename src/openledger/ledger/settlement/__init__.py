"""Settlement: receipts become earnings that can be claimed on chain.

``beneficiaries`` names who a model's fees reach, ``epochs`` closes an epoch (cumulative
earnings, Merkle root on chain, exactly once), ``rewards`` shows earnings and sends claims,
``timeline`` gives an account's earnings per epoch with the names they are keyed by,
``audit`` recomputes an epoch from its receipts and checks it on chain, and ``loop`` runs
event sync and epoch closing in the background.
"""
