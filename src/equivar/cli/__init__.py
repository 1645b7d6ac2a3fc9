"""equivar.cli"""
