"""The edgec intermediate representation."""

from .graph import Graph, IRError, Node, Value
from .printer import print_graph
from .types import DType, QuantParams, TensorType

__all__ = ["DType", "Graph", "IRError", "Node", "QuantParams", "TensorType", "Value", "print_graph"]
