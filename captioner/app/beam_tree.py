"""The beam tree as a Plotly figure: one column per step, every candidate beam search scored as a node.

Pure function of a `BeamTree` (captioner/decoding/beam_tree.py); no Streamlit here. Within a step
the nodes are ordered by running score, best at the top. The returned beams' paths are drawn
thick and their last tokens starred; pruned candidates are faint. The hover shows each node's score
before and after the length penalty (score / length ** length_penalty), which is what decides the
finished set: a longer beam can rank higher after it than before.
"""

from __future__ import annotations

import plotly.graph_objects as go

from captioner.app.views.text import token_label
from captioner.decoding.beam_tree import BeamTree, TreeNode

STATUS_COLOURS = {"start": "#444444", "kept": "#1f77b4", "finished": "#2ca02c", "pruned": "#c7c7c7", "forced": "#9467bd"}
RETURNED_COLOUR = "#d62728"


def node_positions(tree: BeamTree) -> dict[int, tuple[int, int]]:
    """Each node's (column, row): column = step + 1 (the start token is column 0), row = its rank by score in that step."""
    by_step: dict[int, list[TreeNode]] = {}
    for n in tree.nodes:
        by_step.setdefault(n.step, []).append(n)
    positions = {}
    for step, nodes in by_step.items():
        for rank, n in enumerate(sorted(nodes, key=lambda n: (-n.score, n.id))):
            positions[n.id] = (step + 1, -rank)
    return positions


def _label(node: TreeNode) -> str:
    """A node's word as the rest of the app writes it; the start token is the start, not the end token it shares ids with."""
    return "⟨start⟩" if node.status == "start" else token_label(node.token)


def returned_path_nodes(tree: BeamTree) -> set[int]:
    """The nodes on the paths from the start token to each returned beam's last token."""
    on_path = set()
    for node_id in tree.returned:
        while node_id >= 0 and node_id not in on_path:
            on_path.add(node_id)
            node_id = tree.nodes[node_id].parent
    return on_path


def _hover(n: TreeNode, length_penalty: float, returned: bool) -> str:
    lines = [f"<b>{n.token!r}</b> ({n.status}{', returned' if returned else ''})", f"step {n.step + 1}"]
    if n.id:
        lines += [f"score: {n.score:.3f} (sum of log-probs)", f"after length penalty {length_penalty:g}: {n.penalized_score:.3f}"]
    if n.group:
        lines.append(f"group {n.group + 1}")
    return "<br>".join(lines)


def _edge_trace(shown: list[TreeNode], pos: dict[int, tuple[int, int]], highlighted: set[int], on_path: bool) -> go.Scatter:
    """The edges from each shown node to its parent: those on the returned beams' paths, or the others."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for n in shown:
        if n.parent >= 0 and (n.id in highlighted) == on_path:
            (x0, y0), (x1, y1) = pos[n.parent], pos[n.id]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        hoverinfo="skip",
        name="returned beams" if on_path else "candidates",
        line=dict(color=RETURNED_COLOUR if on_path else "#dddddd", width=3 if on_path else 1),
    )


def _node_trace(
    tree: BeamTree, nodes: list[TreeNode], status: str, pos: dict[int, tuple[int, int]], highlighted: set[int]
) -> go.Scatter:
    """The nodes of one status; the returned beams' last tokens starred."""
    colour, returned = STATUS_COLOURS[status], set(tree.returned)
    return go.Scatter(
        x=[pos[n.id][0] for n in nodes],
        y=[pos[n.id][1] for n in nodes],
        mode="markers+text",
        name=status,
        # words only along the returned beams (the rest in the hover), so labels do not pile up
        text=[_label(n) if n.id in highlighted else "" for n in nodes],
        textposition="top center",
        marker=dict(
            color=colour,
            size=[14 if n.id in returned else 8 for n in nodes],
            symbol=["star" if n.id in returned else "circle" for n in nodes],
            line=dict(color=[RETURNED_COLOUR if n.id in highlighted else colour for n in nodes], width=2),
        ),
        hovertext=[_hover(n, tree.length_penalty, n.id in returned) for n in nodes],
        hoverinfo="text",
        opacity=0.5 if status == "pruned" else 1.0,
    )


def beam_tree_figure(tree: BeamTree, show_pruned: bool = True) -> go.Figure:
    """The tree: edges from each node to its parent, nodes coloured by status, the returned beams highlighted."""
    pos = node_positions(tree)
    highlighted = returned_path_nodes(tree)
    shown = [n for n in tree.nodes if show_pruned or n.status != "pruned" or n.id in highlighted]
    fig = go.Figure()
    for on_path in (False, True):
        fig.add_trace(_edge_trace(shown, pos, highlighted, on_path))
    for status in STATUS_COLOURS:
        nodes = [n for n in shown if n.status == status]
        if nodes:
            fig.add_trace(_node_trace(tree, nodes, status, pos, highlighted))
    fig.update_layout(
        xaxis=dict(title="step", dtick=1),
        yaxis=dict(title="rank by score within the step", showticklabels=False),
        height=max(320, 40 * max((-y for _, y in pos.values()), default=0) + 160),
        margin=dict(l=20, r=20, t=50, b=40),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0),
    )
    return fig
