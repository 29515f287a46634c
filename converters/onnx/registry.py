"""The explicit table: (domain, op_type, since_version) -> converter. The converter used for a model is the
one with the highest since_version not above the model's opset. No import side effects register anything."""

from .ops import (add, cast, clip, concat, constantofshape, conv, div, dropout, dual, einsum, elu, expand, flatten,
                  gather, gemm, gru, hardsigmoid, identity, if_, layernormalization, leakyrelu, logsoftmax, lstm,
                  matmul, mul, norms, pad, pool, reduce, relu, reshape, resize, rnn, selu, shape, sigmoid, size, slice,
                  softmax, softplus, softsign, split, squeeze, sub, tanh, transpose, unary, unsqueeze, where)

CONVERTERS = {
    ("", "LSTM", 7): lstm.convert_lstm_7, ("", "LSTM", 14): lstm.convert_lstm_14,
    ("", "GRU", 7): gru.convert_gru_7, ("", "GRU", 14): gru.convert_gru_14,
    ("", "RNN", 7): rnn.convert_rnn_7, ("", "RNN", 14): rnn.convert_rnn_14,
    ("", "Transpose", 1): transpose.convert_transpose_1,
    ("", "Conv", 1): conv.convert_conv_1,
    ("", "ConvTranspose", 1): conv.convert_convtranspose_1,
    ("", "Einsum", 12): einsum.convert_einsum_12,
    ("", "Resize", 10): resize.convert_resize, ("", "Upsample", 7): resize.convert_resize,
    ("", "Where", 9): where.convert_where_9,
    ("", "If", 1): if_.convert_if_1,
    ("", "BatchNormalization", 7): norms.convert_batchnormalization_7,
    ("", "InstanceNormalization", 6): norms.convert_instancenormalization_6,
    ("", "PRelu", 7): norms.convert_prelu_7,
    ("", "MaxPool", 1): pool.convert_maxpool_1, ("", "AveragePool", 1): pool.convert_averagepool_1,
    ("", "GlobalAveragePool", 1): pool.convert_globalaveragepool_1,
    ("", "GlobalMaxPool", 1): pool.convert_globalmaxpool_1,
    ("", "Clip", 6): clip.convert_clip_6, ("", "Clip", 11): clip.convert_clip_11,
    ("rnnjit", "Dual", 1): dual.convert_dual_1,     # written by fusions.py only
    ("", "Size", 1): size.convert_size_1, ("", "Equal", 1): size.convert_equal_1,
    **{("", op, 6): fn for op, fn in unary.CONVERTERS.items()},      # Sqrt, Exp, Log, Abs, Neg, Reciprocal
    ("", "Pow", 7): unary.convert_pow_7,
    ("", "Gelu", 1): unary.convert_gelu_1,
    ("", "ReduceMean", 1): reduce.convert_reduce, ("", "ReduceMean", 18): reduce.convert_reduce,
    ("", "ReduceSum", 1): reduce.convert_reduce, ("", "ReduceSum", 13): reduce.convert_reduce,
    ("", "Pad", 2): pad.convert_pad_2, ("", "Pad", 11): pad.convert_pad_11,
    # (17 in the standard; from 1 here, as fusions.py writes it for a layer norm spelled out at any opset)
    ("", "LayerNormalization", 1): layernormalization.convert_layernormalization_17,
    ("", "Squeeze", 1): squeeze.convert_squeeze_1, ("", "Squeeze", 13): squeeze.convert_squeeze_13,
    ("", "Unsqueeze", 1): unsqueeze.convert_unsqueeze_1, ("", "Unsqueeze", 13): unsqueeze.convert_unsqueeze_13,
    ("", "Reshape", 5): reshape.convert_reshape_5, ("", "Reshape", 14): reshape.convert_reshape_14,
    ("", "Flatten", 1): flatten.convert_flatten_1,
    ("", "Slice", 1): slice.convert_slice_1, ("", "Slice", 10): slice.convert_slice_10,
    ("", "Gather", 1): gather.convert_gather_1,
    ("", "Concat", 1): concat.convert_concat_1,
    ("", "Split", 2): split.convert_split_2, ("", "Split", 13): split.convert_split_13,
    ("", "Shape", 1): shape.convert_shape_1, ("", "Shape", 15): shape.convert_shape_15,
    ("", "ConstantOfShape", 9): constantofshape.convert_constantofshape_9,
    ("", "Expand", 8): expand.convert_expand_8,
    ("", "Identity", 1): identity.convert_identity_1,
    ("", "Cast", 1): cast.convert_cast_1,
    ("", "Dropout", 1): dropout.convert_dropout_1,
    ("", "Gemm", 7): gemm.convert_gemm_7,
    ("", "MatMul", 1): matmul.convert_matmul_1,
    ("", "Add", 7): add.convert_add_7, ("", "Sub", 7): sub.convert_sub_7,
    ("", "Mul", 7): mul.convert_mul_7, ("", "Div", 7): div.convert_div_7,
    ("", "Relu", 6): relu.convert_relu_6, ("", "Tanh", 6): tanh.convert_tanh_6,
    ("", "Sigmoid", 6): sigmoid.convert_sigmoid_6, ("", "LeakyRelu", 6): leakyrelu.convert_leakyrelu_6,
    ("", "HardSigmoid", 6): hardsigmoid.convert_hardsigmoid_6, ("", "Elu", 6): elu.convert_elu_6,
    ("", "Selu", 6): selu.convert_selu_6, ("", "Softplus", 1): softplus.convert_softplus_1,
    ("", "Softsign", 1): softsign.convert_softsign_1,
    ("", "Softmax", 1): softmax.convert_softmax_1, ("", "Softmax", 13): softmax.convert_softmax_13,
    ("", "LogSoftmax", 1): logsoftmax.convert_logsoftmax_1, ("", "LogSoftmax", 13): logsoftmax.convert_logsoftmax_13,
}


def lookup(domain, op_type, opset):
    domain = "" if domain in ("", "ai.onnx") else domain
    versions = [v for (d, op, v) in CONVERTERS if d == domain and op == op_type and v <= opset]
    return CONVERTERS[(domain, op_type, max(versions))] if versions else None


def supported_ops():
    return sorted({op for (_, op, _) in CONVERTERS})
