"""equivar.models"""
