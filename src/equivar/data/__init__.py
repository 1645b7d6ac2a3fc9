"""equivar.data"""
