"""The packed layout every kernel reads: one flat parameter array and one int64 ``meta`` array per layer.

Design: the compiled call layer crosses into a kernel with a fixed C signature
``op(x, y, params, state, scratch, meta, n)`` (six pointers and the row count), so every layer kind packs
its weights into one contiguous ``params`` buffer and describes it in ``meta`` with the offsets below.
The packers (each kind's room, engine/layers/) write these; the kernels (engine/kernels/) read them. Both import
the names from here, so a layout change is one edit.

meta header (all layer kinds)::

    [M_LEN] length of meta    [M_KIND] OP_*      [M_IN] input width   [M_OUT] output width
    [M_PLEN] len(params)      [M_STATE] state floats per row          [M_SCRATCH] scratch floats per row
    [M_H] hidden size H       [M_HO] state size H_out (proj or H)     [M_D] directions
    [M_FLAGS] F_* bits        [M_CODE] activation code (activation layers)
    [M_STRIDE] stride along time (kinds with a Timing: their phase is the last float of their state row)
    [M_EPI] an activation fused after the node (dense, convolutions): its code + 1, or 0 for none
    [M_EPI_P] where that activation's alpha and beta are in params

recurrent layers, per direction d at base ``M_DIR + d * DIR_STRIDE`` (offsets into params)::

    D_M     (I + H_out, G' * H)  [W^T; R^T] stacked: x rows then h rows; G' = 4 LSTM (i,f,g,o), 2 GRU (r,z), 1 RNN
    D_B     (G' * H,)            bias_ih + bias_hh, pre-added (GRU: r, z only)
    D_PEEP  (3, H)               LSTM peepholes i, f, o (zeros when absent)
    D_PROJ  (H, H_out)           LSTM weight_hr^T
    D_WXN   (I, H)               GRU W_n^T   (the candidate's input weights, apart: r multiplies only the h part)
    D_RHN   (H, H)               GRU R_n^T
    D_BXN   (H,)                 GRU bias_ih of n
    D_BHN   (H,)                 GRU bias_hh of n (kept apart for linear_before_reset)
    D_FLT   (7,)                 clip, alpha_f, beta_f, alpha_g, beta_g, alpha_h, beta_h
    D_ACT0..2                    activation codes f, g, h

Matrices (D_M, D_PROJ, D_WXN, D_RHN) are stored as column panels: a (K, N) matrix becomes
(ceil(N / PANEL), K, PANEL), panel p holding columns p*PANEL.. of every row, the last panel zero-padded.
A kernel then walks one panel's rows contiguously while PANEL accumulators stay in vector registers
(cells.gemm_acc); ``Packed.matrix`` gives the plain (K, N) matrix back for BLAS.

dense: D_W (out, in) = weight as given, D_BIAS (out,) or -1.   normalize: D_MEAN, D_SCALE.   activation: params
[alpha, beta] at 0.
"""

OP_LSTM, OP_GRU, OP_RNN, OP_DENSE, OP_ACT, OP_NORM, OP_ELEMENTWISE, OP_EMBEDDING, OP_CONV, OP_LAYER_NORM, \
    OP_CHANNEL_AFFINE, OP_GATHER, OP_CONCAT, OP_FRAME_CONV, OP_POOL, OP_PRELU, OP_GROUP_NORM, OP_L2_NORM, \
    OP_FRAME_CONV_T, OP_MASKING, OP_TEMPORAL_POOL, OP_CONV2D, OP_CUMULATIVE_POOL = range(1, 24)

M_LEN, M_KIND, M_IN, M_OUT, M_PLEN, M_STATE, M_SCRATCH, M_H, M_HO, M_D, M_FLAGS, M_CODE, M_STRIDE, M_EPI, M_EPI_P = \
    range(15)
M_DIR = 16
DIR_STRIDE = 16
D_M, D_B, D_PEEP, D_PROJ, D_WXN, D_RHN, D_BXN, D_BHN, D_FLT, D_ACT0, D_ACT1, D_ACT2 = range(12)
META_LEN = M_DIR + 2 * DIR_STRIDE

# dense / normalize reuse the first direction slots
D_W, D_BIAS = D_M, D_B
D_MEAN, D_SCALE = D_M, D_B

F_FAST = 1          # default activations, no clip/peepholes/input_forget: the vectorized path
F_INPUT_FORGET = 2
F_LBR = 4           # GRU linear_before_reset
F_PROJ = 8
F_CLIP = 32

TILE = 128          # minimum width of gemm_acc's PART scratch: its widest register tile (two panels)
PANEL = 64          # columns per weight panel; linalg._panel takes it in register tiles sized per target (_TILES)
