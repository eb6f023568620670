"""Trajectory encoders: map a sequence of timestep embeddings to a sequence of states.

Shapes: B batch, L timesteps, D_t = ``tstep_dim``, D_s = ``emb_dim``, N parallel envs.
"""

import abc
from typing import Optional

import gin
import numpy as np
import torch
from torch import nn

from metamon.amago.nets.transformer import (
    AttentionLayer,
    FixedPosEmb,
    FlashAttention,
    LearnablePosEmb,
    TformerHiddenState,
    Transformer,
    TransformerLayer,
)
from metamon.amago.nets.utils import Normalization, activation_switch, add_activation_log
from metamon.amago.utils import AmagoError


class TrajEncoder(nn.Module, abc.ABC):
    """Sequence model over timestep embeddings; must be strictly causal.

    Built by the agent as ``traj_encoder_type(tstep_dim=..., max_seq_len=...)``; every other
    constructor argument comes from its default or gin.

    ``forward(seq (B,L,D_t), time_idxs (B,L,1) long, hidden_state=None, log_dict=None)
    -> (out (B,L,D_s), hidden_state)``. Training passes no hidden state and the whole window;
    rollouts pass what :meth:`init_hidden_state` returned, one timestep at a time, and get the
    updated state back. :meth:`reset_hidden_state` is called after every env step with the
    done flags (numpy bool (N,)).
    """

    def __init__(self, tstep_dim: int, max_seq_len: int):
        super().__init__()
        self.tstep_dim = tstep_dim
        self.max_seq_len = max_seq_len

    @property
    @abc.abstractmethod
    def emb_dim(self) -> int:
        """D_s, the last dimension of the output."""

    def init_hidden_state(self, batch_size: int, device):
        """Memory for ``batch_size`` parallel rollouts (None: the encoder has none)."""
        return None

    def reset_hidden_state(self, hidden_state, dones: np.ndarray):
        """Forget the rows whose ``dones`` flag is set (default: nothing to forget)."""
        return hidden_state

    @abc.abstractmethod
    def forward(self, seq, time_idxs, hidden_state=None, log_dict: Optional[dict] = None):
        """(B,L,D_t), (B,L,1) → ((B,L,D_s), hidden_state)."""

    def _check_seq(self, seq: torch.Tensor) -> None:
        if seq.dim() != 3 or seq.shape[-1] != self.tstep_dim:
            raise AmagoError(
                f"{type(self).__name__} expects seq of shape (B, L, {self.tstep_dim}), got {tuple(seq.shape)}"
            )


@gin.configurable
class TformerTrajEncoder(TrajEncoder):
    """Causal pre-norm Transformer (see :mod:`metamon.amago.nets.transformer`), ``emb_dim = d_model``.

    Defaults are AMAGO 3.1.1's. ``pos_emb`` is "fixed" (sinusoidal over the absolute timestep)
    or "learnable" (needs ``LearnablePosEmb.max_time_idx``). ``attention_type`` is built as
    ``attention_type(causal=True, dropout=dropout_attn)``.

    Training (``hidden_state=None``) runs the full window; an eval-mode forward without a hidden
    state does the same (used for validation losses). With a :class:`TformerHiddenState` the
    module must be in eval mode and L must be 1; the KV cache then slides over the last
    ``max_seq_len`` steps (stale keys/values are not recomputed when the window slides).
    State-dict prefix ``tformer.``.
    """

    def __init__(
        self,
        tstep_dim: int,
        max_seq_len: int,
        d_model: int = 256,
        n_heads: int = 8,
        d_ff: int = 1024,
        n_layers: int = 3,
        dropout_ff: float = 0.05,
        dropout_emb: float = 0.05,
        dropout_attn: float = 0.0,
        dropout_qkv: float = 0.0,
        activation: str = "leaky_relu",
        norm: str = "layer",
        pos_emb: str = "fixed",
        sigma_reparam: bool = True,
        normformer_norms: bool = True,
        head_scaling: bool = True,
        attention_type: type = FlashAttention,
    ):
        super().__init__(tstep_dim, max_seq_len)
        if pos_emb == "fixed":
            pos_embedding = FixedPosEmb(d_model)
        elif pos_emb == "learnable":
            pos_embedding = LearnablePosEmb(d_model)
        else:
            raise AmagoError(f'Unknown pos_emb {pos_emb!r} for TformerTrajEncoder; use "fixed" or "learnable"')
        if d_model % n_heads != 0:
            raise AmagoError(f"TformerTrajEncoder d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.head_dim = d_model // n_heads
        layers = [
            TransformerLayer(
                AttentionLayer(
                    attention_type(causal=True, dropout=dropout_attn),
                    d_model=d_model,
                    n_heads=n_heads,
                    dropout_qkv=dropout_qkv,
                    head_scaling=head_scaling,
                    sigma_reparam=sigma_reparam,
                ),
                d_model=d_model,
                d_ff=d_ff,
                dropout_ff=dropout_ff,
                activation=activation,
                norm=norm,
                sigma_reparam=sigma_reparam,
                normformer_norms=normformer_norms,
            )
            for _ in range(n_layers)
        ]
        self.tformer = Transformer(tstep_dim, d_model, layers, pos_embedding, dropout_emb=dropout_emb, norm=norm)

    @property
    def emb_dim(self) -> int:
        return self.d_model

    def init_hidden_state(self, batch_size: int, device) -> TformerHiddenState:
        """NaN-filled KV caches (n_layers, batch_size, max_seq_len, H, E) in the parameters' dtype."""
        dtype = next(self.parameters()).dtype
        return TformerHiddenState.empty(
            self.n_layers, batch_size, self.max_seq_len, self.n_heads, self.head_dim, dtype, device
        )

    def reset_hidden_state(self, hidden_state: TformerHiddenState, dones: np.ndarray) -> TformerHiddenState:
        hidden_state.reset(dones)
        return hidden_state

    def forward(self, seq, time_idxs, hidden_state=None, log_dict=None):
        self._check_seq(seq)
        if hidden_state is not None and self.training:
            raise AmagoError("TformerTrajEncoder uses a KV cache (hidden_state) only in eval mode; call .eval()")
        out, hidden_state = self.tformer(seq, time_idxs, hidden_state)
        add_activation_log("tformer-out", out, log_dict)
        return out, hidden_state


class _ResidualFF(nn.Module):
    """x + dropout(ff2(act(ff1(x)))), ff1: d_model → d_ff, ff2: d_ff → d_model."""

    def __init__(self, d_model: int, d_ff: int, dropout: float, activation: str):
        super().__init__()
        self.ff1 = nn.Linear(d_model, d_ff)
        self.ff2 = nn.Linear(d_ff, d_model)
        self.activation = activation_switch(activation)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return x + self.dropout(self.ff2(self.activation(self.ff1(x))))


@gin.configurable
class FFTrajEncoder(TrajEncoder):
    """Memoryless per-timestep MLP (a baseline without sequence modelling).

        h = dropout(act(inp(seq)));  h = residual FF blocks (n_layers);  out = dropout(norm(out_layer(h)))

    ``d_ff`` defaults to 4 · d_model. The hidden state is passed through unchanged.
    """

    def __init__(
        self,
        tstep_dim: int,
        max_seq_len: int,
        d_model: int = 256,
        d_ff: Optional[int] = None,
        n_layers: int = 1,
        dropout: float = 0.0,
        activation: str = "leaky_relu",
        norm: str = "layer",
    ):
        super().__init__(tstep_dim, max_seq_len)
        d_ff = d_ff or 4 * d_model
        self.d_model = d_model
        self.inp = nn.Linear(tstep_dim, d_model)
        self.activation = activation_switch(activation)
        self.dropout = nn.Dropout(dropout)
        self.layers = nn.ModuleList(_ResidualFF(d_model, d_ff, dropout, activation) for _ in range(n_layers))
        self.out_layer = nn.Linear(d_model, d_model)
        self.out_norm = Normalization(norm, d_model)

    @property
    def emb_dim(self) -> int:
        return self.d_model

    def forward(self, seq, time_idxs, hidden_state=None, log_dict=None):
        self._check_seq(seq)
        h = self.dropout(self.activation(self.inp(seq)))
        for layer in self.layers:
            h = layer(h)
        out = self.dropout(self.out_norm(self.out_layer(h)))
        add_activation_log("ff-traj-out", out, log_dict)
        return out, hidden_state


@gin.configurable
class GRUTrajEncoder(TrajEncoder):
    """Recurrent encoder: GRU (n_layers, d_hidden) → Linear(d_hidden → d_output) → norm.

    Hidden state: (n_layers, N, d_hidden); rows of finished episodes are reset to zero. Without
    a hidden state the GRU starts from zeros; the final GRU state is returned.
    """

    def __init__(
        self,
        tstep_dim: int,
        max_seq_len: int,
        d_hidden: int = 256,
        n_layers: int = 2,
        d_output: int = 256,
        norm: str = "layer",
    ):
        super().__init__(tstep_dim, max_seq_len)
        self.d_hidden = d_hidden
        self.n_layers = n_layers
        self.d_output = d_output
        self.rnn = nn.GRU(tstep_dim, d_hidden, num_layers=n_layers, batch_first=True)
        self.out = nn.Linear(d_hidden, d_output)
        self.out_norm = Normalization(norm, d_output)

    @property
    def emb_dim(self) -> int:
        return self.d_output

    def init_hidden_state(self, batch_size: int, device) -> torch.Tensor:
        dtype = next(self.parameters()).dtype
        return torch.zeros(self.n_layers, batch_size, self.d_hidden, dtype=dtype, device=device)

    def reset_hidden_state(self, hidden_state: torch.Tensor, dones: np.ndarray) -> torch.Tensor:
        dones = torch.as_tensor(dones, dtype=torch.bool, device=hidden_state.device).reshape(-1)
        if dones.shape[0] != hidden_state.shape[1]:
            raise AmagoError(f"dones has {dones.shape[0]} entries but the GRU state holds {hidden_state.shape[1]} rows")
        hidden_state = hidden_state.clone()
        hidden_state[:, dones] = 0.0
        return hidden_state

    def forward(self, seq, time_idxs, hidden_state=None, log_dict=None):
        self._check_seq(seq)
        h_seq, hidden_state = self.rnn(seq, hidden_state)
        out = self.out_norm(self.out(h_seq))
        add_activation_log("gru-out", out, log_dict)
        return out, hidden_state
