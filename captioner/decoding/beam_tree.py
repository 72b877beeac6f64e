"""The beam tree: every candidate a beam search scored at every step, and what became of it.

Node 0 is the start token. Each other node is one candidate (a running beam's parent node plus one
token) among the 2 x num_beams a step ranks: "kept" (one of the num_beams that run on), "finished"
(it entered the finished set), "pruned" (scored, then dropped) or "forced" (a token of a forced
prefix). The returned beams are finished nodes, listed in `returned` in the order of the result's
beams; the path from the root to each is that beam's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

NODE_STATUSES = ("start", "kept", "finished", "pruned", "forced")


@dataclass(frozen=True)
class TreeNode:
    id: int
    parent: int  # -1 for the start token
    step: int  # decoding step that scored it (-1 for the start token)
    token_id: int
    token: str
    score: float  # sum of the processed log-probabilities up to this token (beam search's running score)
    penalized_score: float  # score / length ** length_penalty: what the finished set compares
    status: str  # one of NODE_STATUSES
    group: int = 0  # diverse beam search's group


@dataclass
class BeamTree:
    """The tree of one beam search on one image."""

    nodes: list[TreeNode]
    returned: list[int]  # node ids of the returned beams' last tokens, best first
    length_penalty: float = 1.0

    def path(self, node_id: int) -> list[int]:
        """Token ids from the start token (excluded) to `node_id`."""
        tokens = []
        while node_id > 0:
            node = self.nodes[node_id]
            tokens.append(node.token_id)
            node_id = node.parent
        return tokens[::-1]

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [dict(n.__dict__) for n in self.nodes], "returned": self.returned, "length_penalty": self.length_penalty}


@dataclass
class TreeRecorder:
    """What a beam search writes while it runs: nodes as (parent, step, token, score, penalized, group)."""

    bos_token_id: int
    rows: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rows.append([-1, -1, self.bos_token_id, 0.0, 0.0, 0, "start"])

    def add(self, parent: int, step: int, token: int, score: float, penalized: float, group: int) -> int:
        self.rows.append([parent, step, token, score, penalized, group, "pruned"])
        return len(self.rows) - 1

    def set_status(self, node: int, status: str) -> None:
        self.rows[node][6] = status

    def tree(self, returned: list[int], token_text: Callable[[int], str], length_penalty: float) -> BeamTree:
        nodes = [
            TreeNode(i, parent, step, token, token_text(token), score, penalized, status, group)
            for i, (parent, step, token, score, penalized, group, status) in enumerate(self.rows)
        ]
        return BeamTree(nodes, returned, length_penalty)
