"""numba-compiled kernels: typed, allocation-free, writing into caller buffers.

layout.py   the packed (params, meta) layout shared with the packer
activations.py  exact and fast activation functions
cells.py    LSTM / GRU / RNN step and sequence kernels
ops.py      dense / activation / normalize, the per-layer dispatch and its C entry point
"""
