"""The domain stores: the source systems' ports, built on the primitives.

They import the ports and primitives only, never a backend.
"""
