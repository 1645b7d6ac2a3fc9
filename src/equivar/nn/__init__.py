"""equivar.nn"""
