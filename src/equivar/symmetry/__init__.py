"""equivar.symmetry"""
