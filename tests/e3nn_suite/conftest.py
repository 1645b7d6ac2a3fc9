# upstream/ holds e3nn 0.6.0's own test files: they run against equivar only through test_e3nn_suite.py (a
# subprocess with the shim installed), never in this process
collect_ignore = ["upstream"]
