"""Receipts: a priced charge recorded so that anyone can check it.

``canonical`` defines a receipt (canonical JSON, content hash, hash chain, operator
signature), ``content`` prices one charge into a receipt's content, ``writer`` and
``writer_db`` commit receipts in groups with the credit debits, ``ids`` makes public ids
unguessable, ``queries`` keeps the attributed tokens, ``reads`` serves receipts with their
proofs, and ``compute`` checks a compute provider's signed statement.
"""
