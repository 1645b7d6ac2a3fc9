"""equivar.train"""
