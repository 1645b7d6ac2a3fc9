"""equivar.tp"""
