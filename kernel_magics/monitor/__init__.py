"""Monitor: what production traffic is compared against, and (next) drift and accuracy.

    reference.py   the training-data profile a bundle carries (reference.parquet)
"""
