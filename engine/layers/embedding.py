"""Embedding: integer ids -> vectors, ``weight`` (num_embeddings, embedding_dim) as torch.nn.Embedding stores it.

Reads an integer graph input (``Input(name, shape, "int64")``): a frame of ids of shape s becomes a frame of
shape s + (embedding_dim,). Every id is checked against the table before any kernel runs (``id_bound``: the
stream's input checker and Model.run raise ShapeError naming the id and the table size), so no id can read
past the table. Frame-wise: no state, reads no future.
"""

import numpy as np

from ..errors import SpecError
from ..kernels import layout as L
from ..kernels.embedding import embedding_entry, embedding_step
from .base import Kind, Packed
from .validate import _array


class Embedding:
    """Rows of ``weight`` (num_embeddings, embedding_dim) looked up by integer id, as torch.nn.Embedding.

    ``padding_idx`` is kept for the record (it only changes training: that row gets no gradient). ``max_norm``
    (renormalizing rows at lookup time) is refused by name.
    """

    kind = "embedding"
    input_size = None

    def __init__(self, weight, padding_idx=None, name=None, max_norm=None):
        where = "Embedding" + (f" {name!r}" if name else "")
        if max_norm is not None:
            raise SpecError(f"{where}: max_norm={max_norm} (rows renormalized at lookup time) is not supported; "
                            f"renormalize the table once and load it without max_norm")
        self.name = name
        self.weight = _array(weight, "weight", where, 2)
        V = self.weight.shape[0]
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                    or not -V <= padding_idx < V:
                raise SpecError(f"{where}: padding_idx must be an integer in [-{V}, {V}), got {padding_idx!r}")
            padding_idx = int(padding_idx) % V
        self.padding_idx = padding_idx

    @property
    def num_embeddings(self):
        return self.weight.shape[0]

    @property
    def embedding_dim(self):
        return self.weight.shape[1]

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"

    def to_config(self):
        return {"kind": self.kind, "name": self.name, "padding_idx": self.padding_idx}, {"weight": self.weight}

    @classmethod
    def from_config(cls, config, arrays):
        return cls(arrays["weight"], padding_idx=config.get("padding_idx"), name=config.get("name"))


class EmbeddingKind(Kind):
    name, code, spec_class = "embedding", L.OP_EMBEDDING, Embedding
    step, entry = staticmethod(embedding_step), staticmethod(embedding_entry)
    reads_ids = True

    def infer(self, layer, inputs, where):
        (edge, shape, dtype), = inputs
        if dtype != "int64":
            raise SpecError(f"{where}: an Embedding reads integer ids, but edge {edge!r} carries float frames "
                            f"of shape {shape} (declare the input as Input(name, shape, \"int64\"))")
        return tuple(shape) + (layer.embedding_dim,), "float"

    def id_bound(self, layer):
        return layer.num_embeddings

    def pack_node(self, layer, shapes, dtype):
        (shape,) = shapes
        k = int(np.prod(shape))
        meta = np.zeros(L.META_LEN, dtype=np.int64)
        meta[L.M_H], meta[L.M_HO] = layer.num_embeddings, layer.embedding_dim
        return Packed(layer, self, np.ascontiguousarray(layer.weight, dtype=dtype).ravel(), meta, k,
                      k * layer.embedding_dim)

    def run(self, p, seq, lengths, states_in, states_out, prefix):
        """A take of rows for all T * B frames at once (the ids were checked by Model.run)."""
        T, B = seq.shape[:2]
        V, D = int(p.meta[L.M_H]), int(p.meta[L.M_HO])
        return p.params.reshape(V, D)[seq.reshape(T, B, -1)].reshape(T, B, -1)


KIND = EmbeddingKind()
